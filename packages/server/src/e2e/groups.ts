import { MLS_CONTENT_TYPE } from '@strongroom/sdk/protocol'
import { sql } from 'kysely'
import { type Actor, recordAudit } from '../audit/events.ts'
import { isConversationMember, requireConversationAccess } from '../conversations/conversations.ts'
import {
  type AppendInput,
  appendInTransaction,
  lockConversationLog,
  type MessageAdmission,
} from '../conversations/message-log.ts'
import type { ServerContext } from '../platform/context.ts'
import { actorOf, type Principal, principalMember } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'
import { consumeArchiveRemoval, refuseArchiveRemoval } from './archive-removal.ts'
import { authorizeExternalCommit } from './external-commits.ts'
import {
  addedKeyPackages,
  checkedGroupInfo,
  decodeWhole,
  framingOf,
  keyPackageRef,
  requireAllowedSuite,
} from './framing.ts'
import { claimedOwner, type KeyPackageOwner } from './key-packages.ts'

export { MLS_CONTENT_TYPE }

export interface GroupInfo {
  groupId: string
  cipherSuite: string
  epoch: number
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b))

export async function loadGroup(db: ServerContext['db'], tenantId: string, conversationId: string) {
  return db
    .selectFrom('e2e_groups')
    .select(['group_id', 'cipher_suite', 'epoch', 'group_info'])
    .where('tenant_id', '=', tenantId)
    .where('conversation_id', '=', conversationId)
    .executeTakeFirst()
}

function toGroupInfo(row: { group_id: Uint8Array; cipher_suite: string; epoch: string | number }): GroupInfo {
  return {
    groupId: Buffer.from(row.group_id).toString('base64'),
    cipherSuite: row.cipher_suite,
    epoch: Number(row.epoch),
  }
}

/**
 * Makes a conversation end-to-end encrypted: registers its MLS group at epoch 0, created by the caller's device or
 * agent. First one wins; from then on only MLS messages are accepted in the conversation.
 */
export async function registerGroup(
  ctx: Pick<ServerContext, 'db'>,
  principal: Principal,
  conversationId: string,
  input: { groupId: Uint8Array; cipherSuite: string },
): Promise<GroupInfo> {
  await requireConversationAccess(ctx, principal, conversationId)
  const member = principalMember(principal)
  const cipherSuite = requireAllowedSuite(input.cipherSuite)
  const now = new Date()
  return ctx.db.transaction().execute(async (trx) => {
    // Ordered against the message batches, which admit plaintext only where a conversation has no group.
    await lockConversationLog(trx, principal.tenantId, conversationId, { requireEncryption: true })
    const inserted = await trx
      .insertInto('e2e_groups')
      .values({
        tenant_id: principal.tenantId,
        conversation_id: conversationId,
        group_id: input.groupId,
        cipher_suite: cipherSuite,
        epoch: 0,
        created_at: now,
        updated_at: now,
        group_info: null,
      })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst()
    if ((inserted.numInsertedOrUpdatedRows ?? 0n) === 0n) {
      throw new Problem('e2e/group-exists', 'the conversation already has an MLS group (or the group id is taken)')
    }
    await recordAudit(trx, {
      tenantId: principal.tenantId,
      actor: actorOf(principal),
      action: 'e2e.group.create',
      target: { kind: 'conversation', id: conversationId },
      outcome: 'success',
      details: { cipherSuite, creator: `${member.kind}:${member.id}` },
    })
    return { groupId: Buffer.from(input.groupId).toString('base64'), cipherSuite, epoch: 0 }
  })
}

export async function getGroup(
  ctx: Pick<ServerContext, 'db'>,
  principal: Principal,
  conversationId: string,
): Promise<GroupInfo> {
  await requireConversationAccess(ctx, principal, conversationId)
  const row = await loadGroup(ctx.db, principal.tenantId, conversationId)
  if (!row) throw new Problem('e2e/no-group')
  return toGroupInfo(row)
}

/**
 * Admission for a node's message log: in a conversation with an MLS group only application messages of that group at
 * its current epoch are accepted. A sender still in an older epoch gets a conflict carrying the current one (so a
 * member that has missed a commit removing someone cannot keep encrypting to them); commits take `acceptCommit`.
 * A conversation marked secure takes nothing before its group exists. The framing is read as the message arrives; the
 * group and its epoch are read in the batch statement that stores the message, after it has locked the conversation,
 * and read `for share`: a commit locks the conversation before it moves the epoch (`acceptCommitFrom`), so the epoch
 * checked is the one the message is stored under, on whichever node the commit was accepted.
 */
export const groupMessageAdmission: MessageAdmission = {
  claim(input) {
    if (input.contentType !== MLS_CONTENT_TYPE) return { kind: 'plain' }
    try {
      const framing = framingOf(decodeWhole(input.ciphertext))
      if (framing.contentType !== 'application') {
        throw new Problem('e2e/malformed-message', 'commits go to the commit route; proposals are not relayed')
      }
      return { kind: 'mls', groupId: framing.groupId, epoch: framing.epoch }
    } catch (error) {
      if (error instanceof Problem) return { kind: 'malformed', refusal: error }
      throw error
    }
  },
  refusals: sql`
    select ord, refusal, current_epoch from (
      select i.ord, g.epoch as current_epoch,
             case
               when g.epoch is null and i.claim <> 'plain' then 'no-group'
               when g.epoch is null and l.encryption_required then 'no-group-yet'
               when g.epoch is null then null
               when i.claim = 'plain' then 'encryption-required'
               when i.claim = 'malformed' then 'malformed'
               when i.claimed_group <> g.group_id then 'wrong-group'
               when i.claimed_epoch <> g.epoch then 'epoch-conflict'
             end as refusal
      from input i
      join locked l on l.id = i.conversation_id and l.tenant_id = i.tenant_id
      left join (
        select g.tenant_id, g.conversation_id, g.group_id, g.epoch from e2e_groups g
        where (g.tenant_id, g.conversation_id) in (select tenant_id, id from locked)
        for share
      ) g on g.tenant_id = i.tenant_id and g.conversation_id = i.conversation_id
    ) checked
    where refusal is not null
  `,
  problemOf(claim, refusal, currentEpoch) {
    switch (refusal) {
      case 'no-group':
        return new Problem('e2e/no-group')
      case 'no-group-yet':
        return new Problem(
          'e2e/encryption-required',
          'the conversation is marked secure and its MLS group is not made yet',
        )
      case 'encryption-required':
        return new Problem('e2e/encryption-required')
      case 'malformed':
        return claim.kind === 'malformed' ? claim.refusal : new Problem('e2e/malformed-message')
      case 'wrong-group':
        return new Problem('e2e/wrong-group')
      case 'epoch-conflict':
        return new Problem('e2e/epoch-conflict', undefined, undefined, currentEpoch === null ? {} : { currentEpoch })
      default:
        throw new Error(`no such refusal: ${refusal}`)
    }
  },
}

export interface AcceptedCommit {
  epoch: number
  seq: number
  added: KeyPackageOwner[]
}

/**
 * The delivery service's ordering rule: a commit is accepted only for the group's current epoch, and the first one
 * wins; a late one gets a conflict carrying the current epoch so its author re-bases. An accepted commit advances the
 * epoch, enters the conversation's message log (so every member applies it in order) and routes its welcome to the
 * members it adds, all in one transaction. Every member it adds must come through the key-package directory for this
 * conversation: a conversation member or the archive.
 */
export async function acceptCommit(
  ctx: Pick<ServerContext, 'db' | 'bus'>,
  principal: Principal,
  conversationId: string,
  input: CommitInput,
): Promise<AcceptedCommit> {
  await requireConversationAccess(ctx, principal, conversationId)
  const committer = { tenantId: principal.tenantId, sender: principalMember(principal), actor: actorOf(principal) }
  return acceptCommitFrom(ctx, committer, conversationId, input)
}

export interface CommitInput {
  clientMessageId: string
  commit: Uint8Array
  welcome?: Uint8Array | undefined
  /** The signed GroupInfo of the epoch the commit starts: a member that lost its state re-joins from it. */
  groupInfo?: Uint8Array | undefined
}

/**
 * The same rule for a committer the caller has already authorized: a conversation member, or the archive member
 * (which commits the removal of revoked devices from the groups it is in, and re-adds members that asked). An
 * external commit (a member re-joining after losing its state) passes `authorizeExternalCommit` instead of the add
 * checks. Every commit brings the GroupInfo of the epoch it starts, which replaces the group's published one.
 */
export async function acceptCommitFrom(
  ctx: Pick<ServerContext, 'db' | 'bus'>,
  committer: { tenantId: string; sender: AppendInput['sender']; actor: Actor },
  conversationId: string,
  input: CommitInput,
): Promise<AcceptedCommit> {
  const { tenantId, sender } = committer
  const commit = decodeWhole(input.commit)
  const framing = framingOf(commit)
  if (commit.wireformat !== 'mls_public_message' || framing.contentType !== 'commit') {
    throw new Problem('e2e/malformed-message', 'a commit is sent as an MLS PublicMessage')
  }
  const senderType = commit.publicMessage.content.sender.senderType
  if (senderType !== 'member' && senderType !== 'new_member_commit') {
    throw new Problem('e2e/malformed-message', 'only members and members re-joining by external commit commit')
  }
  const external = senderType === 'new_member_commit'
  // A late commit learns the current epoch before anything else is checked (its key packages may be gone by now).
  const current = await loadGroup(ctx.db, tenantId, conversationId)
  if (!current) throw new Problem('e2e/no-group')
  if (!sameBytes(current.group_id, framing.groupId)) throw new Problem('e2e/wrong-group')
  if (BigInt(current.epoch) !== framing.epoch) {
    throw new Problem('e2e/epoch-conflict', undefined, undefined, { currentEpoch: Number(current.epoch) })
  }
  const { groupInfo } = input
  if (!groupInfo) throw new Problem('e2e/malformed-message', 'a commit comes with the GroupInfo of the epoch it starts')
  checkedGroupInfo(groupInfo, framing.groupId, framing.epoch + 1n)
  let joiner: KeyPackageOwner | undefined
  if (external) {
    if (input.welcome) throw new Problem('e2e/malformed-message', 'an external commit adds nobody')
    joiner = await authorizeExternalCommit(ctx, committer, conversationId, commit, {
      groupId: current.group_id,
      epoch: framing.epoch,
      groupInfo: current.group_info,
    })
  }
  const archiveRemoval = external
    ? undefined
    : await refuseArchiveRemoval(ctx, committer, conversationId, commit, {
        groupId: current.group_id,
        epoch: framing.epoch,
        groupInfo: current.group_info,
      })
  const added: (KeyPackageOwner & { ref: string })[] = []
  for (const keyPackage of addedKeyPackages(commit)) {
    const ref = await keyPackageRef(keyPackage)
    const owner = await claimedOwner(ctx.db, tenantId, conversationId, ref)
    const allowed =
      owner?.kind === 'archive' ||
      (owner !== undefined &&
        (await isConversationMember(ctx, tenantId, conversationId, { kind: owner.kind, id: owner.id })))
    if (!owner || !allowed) throw new Problem('e2e/unknown-key-package')
    added.push({ ...owner, ref })
  }
  // The archive is a member of every secure conversation from the start: the first commit must add it.
  if (framing.epoch === 0n && !added.some((a) => a.kind === 'archive')) throw new Problem('e2e/archive-required')
  if (added.length > 0) {
    if (!input.welcome) throw new Problem('e2e/malformed-message', 'a commit that adds members needs their welcome')
    const welcome = decodeWhole(input.welcome)
    if (welcome.wireformat !== 'mls_welcome') throw new Problem('e2e/malformed-message', 'not an MLS welcome')
    const covered = new Set(welcome.welcome.secrets.map((s) => Buffer.from(s.newMember).toString('hex')))
    if (!added.every((a) => covered.has(a.ref))) {
      throw new Problem('e2e/malformed-message', 'the welcome does not cover every member the commit adds')
    }
  }

  const now = new Date()
  const { accepted, announce } = await ctx.db.transaction().execute(async (trx) => {
    // Before the epoch moves: a message batch of this conversation on any node commits before, under the epoch it
    // checked, or waits and checks the new one.
    await lockConversationLog(trx, tenantId, conversationId)
    const advanced = await trx
      .updateTable('e2e_groups')
      .set((eb) => ({ epoch: eb('epoch', '+', 1), group_info: groupInfo, updated_at: now }))
      .where('tenant_id', '=', tenantId)
      .where('conversation_id', '=', conversationId)
      .where('epoch', '=', framing.epoch.toString())
      .where('group_id', '=', framing.groupId)
      .returning('epoch')
      .executeTakeFirst()
    if (!advanced) {
      const current = await loadGroup(trx, tenantId, conversationId)
      if (!current) throw new Problem('e2e/no-group')
      if (!sameBytes(current.group_id, framing.groupId)) throw new Problem('e2e/wrong-group')
      throw new Problem('e2e/epoch-conflict', undefined, undefined, { currentEpoch: Number(current.epoch) })
    }
    if (archiveRemoval) await consumeArchiveRemoval(trx, committer, conversationId, archiveRemoval.exemptionId)
    const epoch = Number(advanced.epoch)
    const appended = await appendInTransaction(trx, {
      tenantId,
      conversationId,
      sender,
      clientMessageId: input.clientMessageId,
      contentType: MLS_CONTENT_TYPE,
      ciphertext: Buffer.from(input.commit),
      expiresAt: null,
    })
    if (added.length > 0) {
      await trx
        .insertInto('e2e_welcomes')
        .values(
          added.map((a) => ({
            tenant_id: tenantId,
            id: newId('wlc'),
            conversation_id: conversationId,
            recipient_kind: a.kind,
            recipient_id: a.id,
            recipient_instance: a.instance ?? '',
            key_package_ref: a.ref,
            epoch,
            commit_seq: appended.message.seq,
            welcome: input.welcome as Uint8Array,
            created_at: now,
          })),
        )
        .execute()
      // A used key package is gone for good (its private half is the joiner's to delete); last-resort ones stay.
      await trx
        .deleteFrom('e2e_key_packages')
        .where('tenant_id', '=', tenantId)
        .where(
          'ref',
          'in',
          added.map((a) => a.ref),
        )
        .where('last_resort', '=', false)
        .execute()
    }
    // Whoever the commit brings (back) into the group has no re-add request pending any more.
    await dropReaddRequests(trx, tenantId, conversationId, joiner ? [joiner] : added)
    await recordAudit(trx, {
      tenantId,
      actor: committer.actor,
      action: external ? 'e2e.rejoin' : 'e2e.commit',
      target: { kind: 'conversation', id: conversationId },
      outcome: 'success',
      details: external
        ? { epoch, member: `${sender.kind}:${sender.id}`, via: 'external-commit' }
        : { epoch, added: added.map((a) => `${a.kind}:${a.id}`) },
    })
    return {
      accepted: {
        epoch,
        seq: appended.message.seq,
        added: added.map(({ kind, id, instance }) => (instance === undefined ? { kind, id } : { kind, id, instance })),
      },
      announce: appended.announce,
    }
  })
  announce(ctx)
  return accepted
}

/** Clears the re-add requests of the members (instances) a commit brought (back) into the group. */
async function dropReaddRequests(
  trx: ServerContext['db'],
  tenantId: string,
  conversationId: string,
  members: KeyPackageOwner[],
): Promise<void> {
  const requesters = members.flatMap((m) =>
    m.kind === 'device' || m.kind === 'staff' ? [{ kind: m.kind, id: m.id, instance: m.instance ?? '' }] : [],
  )
  if (requesters.length === 0) return
  await trx
    .deleteFrom('e2e_readd_requests')
    .where('tenant_id', '=', tenantId)
    .where('conversation_id', '=', conversationId)
    .where((eb) =>
      eb.or(
        requesters.map((m) =>
          eb.and([eb('member_kind', '=', m.kind), eb('member_id', '=', m.id), eb('member_instance', '=', m.instance)]),
        ),
      ),
    )
    .execute()
}

/** The GroupInfo the group's members published for its current epoch, for a member that lost its state. */
export async function currentGroupInfo(
  ctx: Pick<ServerContext, 'db'>,
  principal: Principal,
  conversationId: string,
): Promise<{ epoch: number; groupInfo: string }> {
  await requireConversationMember(ctx, principal, conversationId)
  const row = await loadGroup(ctx.db, principal.tenantId, conversationId)
  if (!row) throw new Problem('e2e/no-group')
  if (!row.group_info) throw new Problem('e2e/no-group-info')
  return { epoch: Number(row.epoch), groupInfo: Buffer.from(row.group_info).toString('base64') }
}

/**
 * The caller as a member of the conversation: only a member can re-join its group (staff who may read every
 * conversation are not members of each).
 */
export async function requireConversationMember(
  ctx: Pick<ServerContext, 'db'>,
  principal: Principal,
  conversationId: string,
): Promise<{ kind: 'device' | 'staff'; id: string }> {
  await requireConversationAccess(ctx, principal, conversationId)
  const member = principalMember(principal)
  if (!(await isConversationMember(ctx, principal.tenantId, conversationId, member))) {
    throw new Problem('e2e/rejoin-refused', 'only a member of the conversation can re-join its group')
  }
  return member
}

export interface PendingWelcome {
  id: string
  conversationId: string
  epoch: number
  /** The welcome's commit in the conversation's log: a joiner reads the log from after it. */
  commitSeq: number
  welcome: string
}

/**
 * The welcomes waiting for a device, staff member or the archive; for one of a staff member's instances when it names
 * one (and those made before instances were told apart), so one browser never spends another's welcome.
 */
export async function pendingWelcomes(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  recipient: KeyPackageOwner,
): Promise<PendingWelcome[]> {
  let query = ctx.db
    .selectFrom('e2e_welcomes')
    .select(['id', 'conversation_id', 'epoch', 'commit_seq', 'welcome'])
    .where('tenant_id', '=', tenantId)
    .where('recipient_kind', '=', recipient.kind)
    .where('recipient_id', '=', recipient.id)
  if (recipient.instance !== undefined) query = query.where('recipient_instance', 'in', [recipient.instance, ''])
  const rows = await query.orderBy('created_at').orderBy('id').limit(100).execute()
  return rows.map((r) => ({
    id: r.id,
    conversationId: r.conversation_id,
    epoch: Number(r.epoch),
    commitSeq: Number(r.commit_seq),
    welcome: Buffer.from(r.welcome).toString('base64'),
  }))
}

/** A welcome the recipient has used (or given up on) is deleted; returns whether it was there. */
export async function deleteWelcome(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  recipient: KeyPackageOwner,
  welcomeId: string,
): Promise<boolean> {
  const deleted = await ctx.db
    .deleteFrom('e2e_welcomes')
    .where('tenant_id', '=', tenantId)
    .where('id', '=', welcomeId)
    .where('recipient_kind', '=', recipient.kind)
    .where('recipient_id', '=', recipient.id)
    .executeTakeFirst()
  return (deleted.numDeletedRows ?? 0n) > 0n
}

/** The conversations of a tenant that have an MLS group (the archive member catches up on them after a restart). */
export async function groupConversations(ctx: Pick<ServerContext, 'db'>, tenantId: string): Promise<string[]> {
  const rows = await ctx.db
    .selectFrom('e2e_groups')
    .select('conversation_id')
    .where('tenant_id', '=', tenantId)
    .orderBy('conversation_id')
    .execute()
  return rows.map((r) => r.conversation_id)
}
