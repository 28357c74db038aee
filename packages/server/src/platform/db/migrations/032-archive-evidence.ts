import { type Kysely, sql } from 'kysely'

/**
 * The archive keeps consents (with their receipts), moves to the secure channel and device lifecycle events as records
 * of their own, beside the conversations: three more record classes.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table archive_records drop constraint archive_records_record_class_check`.execute(db)
  await sql`alter table archive_records add constraint archive_records_record_class_check check (record_class in
    ('secure-message', 'public-message', 'membership-change', 'consent', 'pivot', 'device-event', 'deletion',
     'erasure'))`.execute(db)
}

export async function down(): Promise<void> {
  throw new Error('the archive evidence migration cannot be reverted')
}
