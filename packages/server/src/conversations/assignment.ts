import type { Assignment } from '@strongroom/sdk/protocol'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { assignableStaff } from '../tenancy/staff.ts'
import { publishConversationUpdate, publishMemberLeft } from './bus-events.ts'
import { addMemberIn } from './conversations.ts'

/**
 * `reassign`: the conversation is the new agent's, and whoever had it stays a member (to follow up or be asked).
 * `transfer`: the same, and whoever had it leaves the conversation: their open streams stop receiving it at once.
 */
export type AssignmentMode = Assignment['mode']

/**
 * Gives a conversation to another staff member who can answer it (their role holds conversations:write), who joins
 * it. In one transaction with its audit record; the streams hear of it once it has committed.
 */
export async function assignConversation(
  ctx: Pick<ServerContext, 'db' | 'bus'>,
  tenantId: string,
  conversationId: string,
  input: { staffId: string; mode: AssignmentMode },
  actor: Actor,
): Promise<{ previousStaffId: string | null }> {
  const done = await ctx.db.transaction().execute(async (trx) => {
    const conversation = await trx
      .selectFrom('conversations')
      .select('assigned_staff_id')
      .where('tenant_id', '=', tenantId)
      .where('id', '=', conversationId)
      .forUpdate()
      .executeTakeFirst()
    if (!conversation) throw new Problem('request/not-found', 'no such conversation')
    const staff = await assignableStaff({ db: trx }, tenantId, input.staffId)
    const previous = conversation.assigned_staff_id
    await trx
      .updateTable('conversations')
      .set({ assigned_staff_id: staff.id })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', conversationId)
      .execute()
    const added = await addMemberIn(trx, tenantId, conversationId, { kind: 'staff', id: staff.id })
    const leaving = input.mode === 'transfer' && previous !== null && previous !== staff.id ? previous : undefined
    if (leaving) {
      await trx
        .deleteFrom('conversation_members')
        .where('tenant_id', '=', tenantId)
        .where('conversation_id', '=', conversationId)
        .where('member_kind', '=', 'staff')
        .where('member_id', '=', leaving)
        .execute()
    }
    await recordAudit(trx, {
      tenantId,
      actor,
      action: `conversation.${input.mode}`,
      target: { kind: 'conversation', id: conversationId },
      outcome: 'success',
      details: { from: previous, to: staff.id },
    })
    return { previous, added, leaving }
  })
  done.added.announce(ctx)
  if (done.leaving) publishMemberLeft(ctx.bus, tenantId, conversationId, { kind: 'staff', id: done.leaving })
  publishConversationUpdate(ctx.bus, {
    tenantId,
    conversationId,
    update: { kind: 'assignment', assignedStaffId: input.staffId },
  })
  return { previousStaffId: done.previous }
}
