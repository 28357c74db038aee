import type { ConversationNote } from '@strongroom/sdk/protocol'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { newId } from '../platform/ids.ts'
import type { EncryptedColumn } from '../platform/keyring/reencrypt.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring'>

const bodyField = (id: string) => ({ table: 'conversation_notes', column: 'body', rowId: id })

/** The notes' text, sealed by the keyring: for `keys reencrypt` and `keys retire`. */
export const noteEncryptedColumns: EncryptedColumn[] = [
  { table: 'conversation_notes', column: 'body', key: ['id'], field: (row) => bodyField(row.id as string) },
]

/**
 * Writes an internal note on a conversation: staff read it beside the messages; it is never a message, so it
 * never reaches the customer's devices, a public channel, the MLS group or the stream. Sealed at rest; audited
 * without its text.
 */
export async function addNote(
  ctx: Ctx,
  tenantId: string,
  conversationId: string,
  input: { authorStaffId: string; text: string },
  actor: Actor,
): Promise<ConversationNote> {
  const id = newId('not')
  const createdAt = new Date()
  const body = await ctx.keyring.encrypt(tenantId, bodyField(id), input.text)
  await ctx.db.transaction().execute(async (trx) => {
    await trx
      .insertInto('conversation_notes')
      .values({
        tenant_id: tenantId,
        id,
        conversation_id: conversationId,
        author_staff_id: input.authorStaffId,
        body,
        created_at: createdAt,
      })
      .execute()
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'conversations.note.added',
      target: { kind: 'conversation', id: conversationId },
      outcome: 'success',
      details: { noteId: id, length: input.text.length },
    })
  })
  return {
    id,
    conversationId,
    authorStaffId: input.authorStaffId,
    text: input.text,
    createdAt: createdAt.toISOString(),
  }
}

/** A conversation's notes, oldest first. */
export async function listNotes(ctx: Ctx, tenantId: string, conversationId: string): Promise<ConversationNote[]> {
  const rows = await ctx.db
    .selectFrom('conversation_notes')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('conversation_id', '=', conversationId)
    .orderBy('created_at')
    .orderBy('id')
    .limit(1000)
    .execute()
  return Promise.all(
    rows.map(async (row) => ({
      id: row.id,
      conversationId: row.conversation_id,
      authorStaffId: row.author_staff_id,
      text: await ctx.keyring.decryptText(tenantId, bodyField(row.id), row.body),
      createdAt: new Date(row.created_at).toISOString(),
    })),
  )
}
