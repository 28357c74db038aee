import type { MLSMessage } from 'ts-mls'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { checkedGroupInfo, commitProposals, memberAtLeaf } from './framing.ts'

/**
 * The archive is a member of every secure conversation, so record-keeping is an end of the encryption and not a hole
 * in it: a commit that removes the archive's leaf is refused, and so is one removing a leaf the delivery service
 * cannot name from the group's published ratchet tree (deny by default), unless the archive member itself commits it:
 * its re-add of a member that lost its state removes that member's stale leaf, also in a group from before GroupInfos
 * were published, and it never removes itself. The refusal is audited.
 */
export async function refuseArchiveRemoval(
  ctx: Pick<ServerContext, 'db'>,
  committer: { tenantId: string; sender: { kind: string }; actor: Actor },
  conversationId: string,
  commit: MLSMessage,
  group: { groupId: Uint8Array; epoch: bigint; groupInfo: Uint8Array | null },
): Promise<void> {
  const removed = commitProposals(commit).flatMap((p) => (p.proposalType === 'remove' ? [p.remove.removed] : []))
  if (removed.length === 0) return
  let published: ReturnType<typeof checkedGroupInfo> | undefined
  try {
    if (group.groupInfo) published = checkedGroupInfo(group.groupInfo, group.groupId, group.epoch)
  } catch {
    published = undefined
  }
  const members = removed.map((leaf) => (published ? memberAtLeaf(published, leaf) : undefined))
  const removesArchive = members.some((member) => member?.kind === 'archive')
  const removesUnnamed = members.some((member) => member === undefined)
  if (!removesArchive && (!removesUnnamed || committer.sender.kind === 'archive')) return
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
