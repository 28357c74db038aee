import type { Kysely } from 'kysely'

/**
 * A conversation the bank marks secure (every pivot's secure conversation, or one opened so) takes only MLS messages
 * of its group, and none before the group exists. Conversations from before stay as they were.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('conversations')
    .addColumn('encryption_required', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the encryption-required migration cannot be reverted')
}
