import { type Kysely, sql } from 'kysely'

/**
 * A redaction: the archive's record that a public message it kept was masked after the fact (the first part of a card
 * number typed over two messages), superseding what it kept of that message in every search and export. The record it
 * supersedes stays in the chain, sealed, so the chain still verifies.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table archive_records drop constraint archive_records_record_class_check`.execute(db)
  await sql`alter table archive_records add constraint archive_records_record_class_check check (record_class in
    ('secure-message', 'public-message', 'membership-change', 'consent', 'pivot', 'device-event', 'redaction',
     'deletion', 'erasure'))`.execute(db)
}

export async function down(): Promise<void> {
  throw new Error('the archive redaction migration cannot be reverted')
}
