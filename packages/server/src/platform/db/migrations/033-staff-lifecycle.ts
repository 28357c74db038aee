import type { Kysely } from 'kysely'

/**
 * Staff have a lifecycle: a deactivated member keeps their row (the audit log names them) but holds no token and gets
 * none. The bank's identity provider provisions staff over SCIM: its own id for the user (`externalId`) and the name
 * people see are kept beside the user name; a user it deletes stays (deactivated) for the audit log, hidden from it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('staff')
    .addColumn('deactivated_at', 'timestamptz')
    .addColumn('external_id', 'text')
    .addColumn('display_name', 'text')
    .addColumn('updated_at', 'timestamptz')
    .addColumn('deleted_at', 'timestamptz')
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the staff lifecycle migration cannot be reverted')
}
