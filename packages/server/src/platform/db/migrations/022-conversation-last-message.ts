import { type Kysely, sql } from 'kysely'

/**
 * A conversation records when its last message arrived, set in the statement that appends it: an inbox sorts and shows
 * that time without one request per conversation. Conversations from before take it from their newest stored message.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('conversations').addColumn('last_message_at', 'timestamptz').execute()
  await sql`update conversations c set last_message_at = (
    select max(m.created_at) from messages m where m.tenant_id = c.tenant_id and m.conversation_id = c.id
  )`.execute(db)
}

export async function down(): Promise<void> {
  throw new Error('the conversation last-message migration cannot be reverted')
}
