import { type Kysely, sql } from 'kysely'

/**
 * The archive keeps consents (with their receipts), moves to the secure channel and device lifecycle events as records
 * of their own, beside the conversations: three more record classes. And a compliance officer's exemption, the only
 * way a commit may take the archive out of a secure conversation: single use, short-lived, audited. And each signed
 * checkpoint of the audit and archive chains keeps the Merkle frontier at its size, from which the witness is given an
 * RFC 6962 consistency proof to the next one.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table archive_records drop constraint archive_records_record_class_check`.execute(db)
  await sql`alter table archive_records add constraint archive_records_record_class_check check (record_class in
    ('secure-message', 'public-message', 'membership-change', 'consent', 'pivot', 'device-event', 'deletion',
     'erasure'))`.execute(db)
  await db.schema
    .createTable('archive_removal_exemptions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('conversation_id', 'text', (c) => c.notNull())
    .addColumn('granted_by', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .execute()
  await sql`create index archive_removal_exemptions_open_idx on archive_removal_exemptions
    (tenant_id, conversation_id) where used_at is null`.execute(db)
  for (const table of ['audit_checkpoints', 'archive_checkpoints']) {
    await db.schema.alterTable(table).addColumn('frontier', 'bytea').execute()
  }
}

export async function down(): Promise<void> {
  throw new Error('the archive evidence migration cannot be reverted')
}
