import type { MLSMessage } from 'ts-mls'
import { type Actor, recordAudit } from '../audit/events.ts'
import { isConversationMember } from '../conversations/conversations.ts'
import type { AppendInput } from '../conversations/message-log.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { verifiedMember } from './credential-authority.ts'
import { checkedGroupInfo, commitProposals, memberAtLeaf } from './framing.ts'
import type { KeyPackageOwner } from './key-packages.ts'

export interface ExternalCommitter {
  tenantId: string
  sender: AppendInput['sender']
  actor: Actor
}

/**
 * The delivery service's checks on an external commit (RFC 9420, section 12.4.3.2), the way a member that lost its
 * group state re-joins (it returns the joiner, with its instance): the caller is a member of the conversation; the joiner's leaf carries a credential the
 * authority signed for exactly the caller; and the commit only takes the caller's own earlier leaf out (in the tree of
 * the GroupInfo published for this epoch) and puts the new one in. Members check the same and would refuse anything
 * else, so the server refuses it first: a commit it accepted but members refused would strand the group in an epoch
 * nobody can enter. A refusal is a security event and is audited.
 */
export async function authorizeExternalCommit(
  ctx: Pick<ServerContext, 'db'>,
  committer: ExternalCommitter,
  conversationId: string,
  commit: MLSMessage,
  group: { groupId: Uint8Array; epoch: bigint; groupInfo: Uint8Array | null },
): Promise<KeyPackageOwner> {
  const refuse = async (reason: string): Promise<never> => {
    await recordAudit(ctx.db, {
      tenantId: committer.tenantId,
      actor: committer.actor,
      action: 'e2e.rejoin',
      target: { kind: 'conversation', id: conversationId },
      outcome: 'failure',
      reason,
      details: { via: 'external-commit', epoch: Number(group.epoch) },
    })
    throw new Problem('e2e/rejoin-refused', reason)
  }
  const { sender } = committer
  // The archive is a member of every secure conversation; anyone else must be a member of this one.
  const member =
    sender.kind === 'archive' ||
    ((sender.kind === 'device' || sender.kind === 'staff') &&
      (await isConversationMember(ctx, committer.tenantId, conversationId, { kind: sender.kind, id: sender.id })))
  if (!member) return refuse('only a member of the conversation can re-join its group')
  const content = commit.wireformat === 'mls_public_message' ? commit.publicMessage.content : undefined
  const leaf = content?.contentType === 'commit' ? content.commit.path?.leafNode : undefined
  if (!leaf) throw new Problem('e2e/malformed-message', 'an external commit carries the joiner’s leaf in its path')
  const proposals = commitProposals(commit)
  const removes = proposals.flatMap((p) => (p.proposalType === 'remove' ? [p.remove.removed] : []))
  const inits = proposals.filter((p) => p.proposalType === 'external_init')
  if (removes.length !== 1 || inits.length !== 1 || proposals.length !== 2) {
    return refuse('an external commit only puts the joiner in place of its own earlier leaf')
  }
  const joiner = await verifiedMember(ctx, committer.tenantId, leaf.credential, leaf.signaturePublicKey)
  if (!joiner || joiner.kind !== sender.kind || joiner.id !== sender.id) {
    return refuse('the credential in the external commit is not the caller’s')
  }
  // One of a staff member's browsers re-joins in place of its own leaf, never another of theirs.
  const earlier = memberAtLeaf(publishedGroupInfo(group), removes[0] as number)
  if (earlier?.kind !== sender.kind || earlier.id !== sender.id || earlier.instance !== joiner.instance) {
    return refuse('the external commit takes out a leaf that is not the caller’s own')
  }
  return joiner.instance === undefined
    ? { kind: joiner.kind, id: joiner.id }
    : { kind: joiner.kind, id: joiner.id, instance: joiner.instance }
}

/** The GroupInfo the joiner must have re-joined from: the one published for the group's current epoch. */
function publishedGroupInfo(group: { groupId: Uint8Array; epoch: bigint; groupInfo: Uint8Array | null }) {
  try {
    if (group.groupInfo) return checkedGroupInfo(group.groupInfo, group.groupId, group.epoch)
  } catch {
    // Not this epoch's: as good as none.
  }
  throw new Problem('e2e/no-group-info')
}
