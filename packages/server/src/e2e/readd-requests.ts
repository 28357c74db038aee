import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { actorOf, type Principal } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { requireConversationMember } from './groups.ts'

/** Said on the bus when a member asks to be re-added, so the archive member (on whichever node) does it at once. */
export const READD_REQUESTED_SUBJECT_PREFIX = 'sr.e2e.readd.'

export interface ReaddRequestedEvent {
  tenantId: string
  conversationId: string
}

export interface ReaddRequest {
  conversationId: string
  /** With `instance`, one of a staff member's browsers: that leaf only is added. */
  member: { kind: 'device' | 'staff'; id: string; instance?: string }
}

/**
 * A member of the conversation that lost its group state and cannot re-join by external commit (the group has no
 * GroupInfo yet, or it does not verify) asks to be re-added. One request per member and conversation is kept until a
 * commit brings the member back or the archive member refuses it; the bus only wakes the archive member up, which
 * also reads pending requests when it starts. While a welcome waits for the member, it has been re-added and the
 * request is passed over (the SDK drops a welcome it cannot open before asking). A staff member's browser names itself
 * (`instance`): each of their browsers is a leaf of its own, asked for and added on its own.
 */
export async function requestReadd(
  ctx: Pick<ServerContext, 'db' | 'bus'>,
  principal: Principal,
  conversationId: string,
  instance?: string,
): Promise<void> {
  const member = await requireConversationMember(ctx, principal, conversationId)
  if (instance !== undefined && member.kind !== 'staff') {
    throw new Problem('request/invalid', 'only a staff member’s browsers are told apart by instance')
  }
  const now = new Date()
  const requested = await ctx.db.transaction().execute(async (trx) => {
    // The group's row orders this after a commit in progress: one that re-adds the member commits its welcome first.
    const group = await trx
      .selectFrom('e2e_groups')
      .select('epoch')
      .where('tenant_id', '=', principal.tenantId)
      .where('conversation_id', '=', conversationId)
      .forUpdate()
      .executeTakeFirst()
    if (!group) throw new Problem('e2e/no-group')
    // Re-added already (the commit's welcome is waiting for it): asking again would only replace it once more.
    const welcome = await trx
      .selectFrom('e2e_welcomes')
      .select('id')
      .where('tenant_id', '=', principal.tenantId)
      .where('conversation_id', '=', conversationId)
      .where('recipient_kind', '=', member.kind)
      .where('recipient_id', '=', member.id)
      .where('recipient_instance', '=', instance ?? '')
      .executeTakeFirst()
    if (welcome) return false
    await trx
      .insertInto('e2e_readd_requests')
      .values({
        tenant_id: principal.tenantId,
        conversation_id: conversationId,
        member_kind: member.kind,
        member_id: member.id,
        member_instance: instance ?? '',
        requested_at: now,
      })
      .onConflict((oc) =>
        oc
          .columns(['tenant_id', 'conversation_id', 'member_kind', 'member_id', 'member_instance'])
          .doUpdateSet({ requested_at: now }),
      )
      .execute()
    await recordAudit(trx, {
      tenantId: principal.tenantId,
      actor: actorOf(principal),
      action: 'e2e.readd.request',
      target: { kind: 'conversation', id: conversationId },
      outcome: 'success',
    })
    return true
  })
  if (!requested) return
  const event: ReaddRequestedEvent = { tenantId: principal.tenantId, conversationId }
  ctx.bus.publish(READD_REQUESTED_SUBJECT_PREFIX + principal.tenantId, new TextEncoder().encode(JSON.stringify(event)))
}

/** The re-add requests waiting in a tenant, oldest first; of one conversation when given. */
export async function pendingReaddRequests(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  conversationId?: string,
): Promise<ReaddRequest[]> {
  let query = ctx.db
    .selectFrom('e2e_readd_requests')
    .select(['conversation_id', 'member_kind', 'member_id', 'member_instance'])
    .where('tenant_id', '=', tenantId)
  if (conversationId !== undefined) query = query.where('conversation_id', '=', conversationId)
  const rows = await query.orderBy('requested_at').limit(500).execute()
  return rows.map((r) => ({
    conversationId: r.conversation_id,
    member:
      r.member_instance === ''
        ? { kind: r.member_kind, id: r.member_id }
        : { kind: r.member_kind, id: r.member_id, instance: r.member_instance },
  }))
}

/** Drops a request the archive member will not grant (the member left the conversation, or has no leaf to restore). */
export async function refuseReaddRequest(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  request: ReaddRequest,
  actor: Actor,
  reason: string,
): Promise<void> {
  await ctx.db.transaction().execute(async (trx) => {
    await trx
      .deleteFrom('e2e_readd_requests')
      .where('tenant_id', '=', tenantId)
      .where('conversation_id', '=', request.conversationId)
      .where('member_kind', '=', request.member.kind)
      .where('member_id', '=', request.member.id)
      .where('member_instance', '=', request.member.instance ?? '')
      .execute()
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'e2e.readd',
      target: { kind: request.member.kind, id: request.member.id },
      outcome: 'failure',
      reason,
      details: { conversationId: request.conversationId },
    })
  })
}
