import type { Kysely } from 'kysely'

/**
 * A customer has one live pivot link at a time: sending a new one revokes the older ones still open, so that an old
 * link found later in a message thread (or a second tab) cannot move or enrol anything. When it was revoked, or null.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('pivot_links').addColumn('revoked_at', 'timestamptz').execute()
}

export async function down(): Promise<void> {
  throw new Error('the pivot link revocation migration cannot be reverted')
}
