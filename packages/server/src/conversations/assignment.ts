import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { roleScopes } from '../platform/http/roles.ts'
import { findStaff } from '../tenancy/staff.ts'
import { publishConversationUpdate, publishMemberLeft } from './bus-events.ts'
import { addMemberIn } from './conversations.ts'

/**
 * `reassign`: the conversation is the new agent's, and whoever had it stays a member (to follow up or be asked).
 * `transfer`: the same, and whoever had it leaves the conversation: their open streams stop receiving it at once.
 */
export const assignmentModes = ['reassign', 'transfer'] as const
export type AssignmentMode = (typeof assignmentModes)[number]

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
    const staff = await findStaff({ db: trx }, tenantId, { id: input.staffId })
    if (!staff) throw new Problem('request/not-found', 'no such staff member')
    // A deactivated member could never read it: their tokens are revoked and none is issued to them.
    if (!staff.active)
      throw new Problem('request/invalid', `${staff.name} is deactivated and cannot take conversations`)
    if (!roleScopes[staff.role].includes('conversations:write')) {
      throw new Problem('request/invalid', `a staff member with the ${staff.role} role cannot answer conversations`)
    }
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
