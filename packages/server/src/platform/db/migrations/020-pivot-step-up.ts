import { type Kysely, sql } from 'kysely'

/**
 * The pivot's step-up for a browser or phone that is not enrolled: passkey challenges get a `pivot` purpose (issued
 * to whoever holds a link, for the link's customer, and usable nowhere else), and a link records how it was
 * completed (an enrolled device, or a new one enrolled with a passkey or an SMS code).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table passkey_challenges drop constraint passkey_challenges_purpose_check`.execute(db)
  await sql`alter table passkey_challenges add constraint passkey_challenges_purpose_check
    check (purpose in ('register', 'authenticate', 'sign-in', 'pivot'))`.execute(db)
  await db.schema
    .alterTable('pivot_links')
    .addColumn('completed_via', 'text', (c) => c.check(sql`completed_via in ('device', 'passkey', 'sms-otp')`))
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the pivot step-up migration cannot be reverted')
}
