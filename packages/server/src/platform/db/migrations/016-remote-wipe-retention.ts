import { type Kysely, sql } from 'kysely'

/**
 * Remote wipe and message retention for devices: when a revoked device confirmed its wipe; the tenant's default
 * retention for message ciphertext kept for devices, and a per-conversation override; an index that lets the expiry
 * job find expired messages without scanning them all.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('devices').addColumn('wiped_at', 'timestamptz').execute()
  await db.schema
    .createTable('message_retention_policies')
    .addColumn('tenant_id', 'text', (c) => c.primaryKey().references('tenants.id'))
    .addColumn('device_message_days', 'integer', (c) => c.notNull().check(sql`device_message_days between 1 and 3650`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .execute()
  await db.schema
    .alterTable('conversations')
    .addColumn('device_message_days', 'integer', (c) => c.check(sql`device_message_days between 1 and 3650`))
    .execute()
  await sql`create index messages_expiry_idx on messages (expires_at) where expires_at is not null`.execute(db)
}

export async function down(): Promise<void> {
  throw new Error('the remote wipe and retention migration cannot be reverted')
}
