import { type Kysely, sql } from 'kysely'

/**
 * SMS over SMPP 3.4: `smpp` becomes a channel connector, and the parts of a long SMS we send are kept by the SMSC's id
 * of each, since the SMSC sends a delivery receipt per part and the message is delivered only when all of them are.
 * Parts hold ids and states only, nothing of the text or the number.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table channel_configs drop constraint channel_configs_connector_check`.execute(db)
  await sql`alter table channel_configs add constraint channel_configs_connector_check
    check (connector in ('twilio', 'whatsapp', 'messenger', 'smpp'))`.execute(db)
  await db.schema
    .createTable('smpp_message_parts')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    // The SMSC's message id of this part, as its submit_sm_resp and delivery receipts give it.
    .addColumn('part_id', 'text', (c) => c.notNull())
    // The message's provider_message_id in channel_messages: the id of its first part.
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('error_code', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('smpp_message_parts_pk', ['tenant_id', 'part_id'])
    .execute()
  await db.schema
    .createIndex('smpp_message_parts_message_idx')
    .on('smpp_message_parts')
    .columns(['tenant_id', 'message_id'])
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the SMPP migration cannot be reverted')
}
