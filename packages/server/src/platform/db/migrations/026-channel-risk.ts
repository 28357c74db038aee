import type { Kysely } from 'kysely'

/**
 * A public conversation remembers the smishing and spoofing flags its messages raised (a lookalike link, a link
 * shortener, a sender claiming to be the bank), so that the console can badge the conversation, not only the message.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('channel_identities')
    .addColumn('risk_flags', 'text', (column) => column.notNull().defaultTo('[]'))
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the channel risk migration cannot be reverted')
}
