import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import type { ConversationStatus } from '../platform/db/schema.ts'
import { Problem } from '../platform/http/problems.ts'
import { publishConversationUpdate } from './bus-events.ts'

/**
 * Marks a conversation open, pending (waiting on the customer) or resolved, with its audit record in one
 * transaction; once committed, its members' streams on every node hear of it (a colleague's console shows it without
 * a reload). The customer's next message reopens it (the message log does, in the statement that appends it).
 */
export async function setConversationStatus(
  ctx: Pick<ServerContext, 'db' | 'bus'>,
  tenantId: string,
  conversationId: string,
  status: ConversationStatus,
  actor: Actor,
): Promise<void> {
  const changed = await ctx.db.transaction().execute(async (trx) => {
    const before = await trx
      .selectFrom('conversations')
      .select('status')
      .where('tenant_id', '=', tenantId)
      .where('id', '=', conversationId)
      .forUpdate()
      .executeTakeFirst()
    if (!before) throw new Problem('request/not-found', 'no such conversation')
    if (before.status === status) return false
    await trx
      .updateTable('conversations')
      .set({ status, status_changed_at: new Date() })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', conversationId)
      .execute()
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'conversations.status',
      target: { kind: 'conversation', id: conversationId },
      outcome: 'success',
      details: { from: before.status, to: status },
    })
    return true
  })
  if (changed) publishConversationUpdate(ctx.bus, { tenantId, conversationId, update: { kind: 'status', status } })
}
