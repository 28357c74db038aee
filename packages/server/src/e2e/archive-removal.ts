import type { Kysely } from 'kysely'
import type { MLSMessage } from 'ts-mls'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import type { Database } from '../platform/db/schema.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'
import { checkedGroupInfo, commitProposals, memberAtLeaf } from './framing.ts'

/** How long a compliance officer's leave to remove the archive stays usable: long enough for one commit. */
export const ARCHIVE_REMOVAL_EXEMPTION_MS = 15 * 60_000

/**
 * The archive is a member of every secure conversation, so record-keeping is an end of the encryption and not a hole
 * in it: a commit that removes the archive's leaf is refused, and so is one removing a leaf the delivery service
 * cannot name from the group's published ratchet tree (deny by default), unless the archive member itself commits it:
 * its re-add of a member that lost its state removes that member's stale leaf, also in a group from before GroupInfos
 * were published, and it never removes itself. The refusal is audited. The one way out for the archive is a compliance
 * officer's exemption for the conversation (`grantArchiveRemoval`): the commit that uses it gets its id back here,
 * and must consume it in its own transaction (`consumeArchiveRemoval`), so one exemption lets one commit through.
 */
export async function refuseArchiveRemoval(
  ctx: Pick<ServerContext, 'db'>,
  committer: { tenantId: string; sender: { kind: string }; actor: Actor },
  conversationId: string,
  commit: MLSMessage,
  group: { groupId: Uint8Array; epoch: bigint; groupInfo: Uint8Array | null },
): Promise<{ exemptionId: string } | undefined> {
  const removed = commitProposals(commit).flatMap((p) => (p.proposalType === 'remove' ? [p.remove.removed] : []))
  if (removed.length === 0) return undefined
  let published: ReturnType<typeof checkedGroupInfo> | undefined
  try {
    if (group.groupInfo) published = checkedGroupInfo(group.groupInfo, group.groupId, group.epoch)
  } catch {
    published = undefined
  }
  const members = removed.map((leaf) => (published ? memberAtLeaf(published, leaf) : undefined))
  const removesArchive = members.some((member) => member?.kind === 'archive')
  const removesUnnamed = members.some((member) => member === undefined)
  if (!removesArchive && (!removesUnnamed || committer.sender.kind === 'archive')) return undefined
  if (removesArchive && !removesUnnamed) {
    const exemption = await openExemption(ctx.db, committer.tenantId, conversationId)
    if (exemption) return { exemptionId: exemption.id }
  }
  const reason = removesArchive
    ? 'a commit may not remove the archive from a secure conversation'
    : 'the commit removes a member the group’s published tree does not name'
  await recordAudit(ctx.db, {
    tenantId: committer.tenantId,
    actor: committer.actor,
    action: 'e2e.commit',
    target: { kind: 'conversation', id: conversationId },
    outcome: 'denied',
    reason: 'e2e/archive-removal-refused',
    details: { epoch: Number(group.epoch) },
  })
  throw new Problem('e2e/archive-removal-refused', reason)
}

async function openExemption(db: Kysely<Database>, tenantId: string, conversationId: string) {
  return db
    .selectFrom('archive_removal_exemptions')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('conversation_id', '=', conversationId)
    .where('used_at', 'is', null)
    .where('expires_at', '>', new Date())
    .orderBy('created_at')
    .executeTakeFirst()
}

/**
 * A compliance officer lets one commit take the archive out of one secure conversation (a conversation the bank may
 * not record, say), for a short time, with a reason: the only exception to the archive being in every group. Audited.
 */
export async function grantArchiveRemoval(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  conversationId: string,
  reason: string,
  actor: Actor,
): Promise<{ id: string; conversationId: string; reason: string; expiresAt: string }> {
  const group = await ctx.db
    .selectFrom('e2e_groups')
    .select('conversation_id')
    .where('tenant_id', '=', tenantId)
    .where('conversation_id', '=', conversationId)
    .executeTakeFirst()
  if (!group) throw new Problem('e2e/no-group')
  const now = new Date()
  const exemption = {
    id: newId('arx'),
    tenant_id: tenantId,
    conversation_id: conversationId,
    granted_by: `${actor.kind}:${actor.id ?? ''}`,
    reason,
    created_at: now,
    expires_at: new Date(now.getTime() + ARCHIVE_REMOVAL_EXEMPTION_MS),
  }
  await ctx.db.transaction().execute(async (trx) => {
    await trx.insertInto('archive_removal_exemptions').values(exemption).execute()
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'e2e.archive-removal.grant',
      target: { kind: 'conversation', id: conversationId },
      outcome: 'success',
      reason,
      details: { exemptionId: exemption.id, expiresAt: exemption.expires_at.toISOString() },
    })
  })
  return { id: exemption.id, conversationId, reason, expiresAt: exemption.expires_at.toISOString() }
}

/**
 * Uses the exemption inside the commit's transaction: a second commit racing for the same one, or one arriving after
 * it expired, is refused. Audited with the exemption's id, beside the commit.
 */
export async function consumeArchiveRemoval(
  trx: Kysely<Database>,
  committer: { tenantId: string; actor: Actor },
  conversationId: string,
  exemptionId: string,
): Promise<void> {
  const used = await trx
    .updateTable('archive_removal_exemptions')
    .set({ used_at: new Date() })
    .where('id', '=', exemptionId)
    .where('used_at', 'is', null)
    .where('expires_at', '>', new Date())
    .returning('id')
    .executeTakeFirst()
  if (!used) throw new Problem('e2e/archive-removal-refused', 'the exemption for this removal was used or has expired')
  await recordAudit(trx, {
    tenantId: committer.tenantId,
    actor: committer.actor,
    action: 'e2e.archive-removal.use',
    target: { kind: 'conversation', id: conversationId },
    outcome: 'success',
    details: { exemptionId },
  })
}
