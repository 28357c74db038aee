import { createHash, randomBytes } from 'node:crypto'
import { type MemberIdentity, nodeCryptoProvider, type SecureEvent, SecureMessaging } from '@strongroom/sdk/mls-node'
import { type AuditEvent, recordAudit } from '../audit/events.ts'
import { type Envelope, openEnvelope, PUBLIC_MESSAGE_TYPE } from '../channels/envelope.ts'
import { publicConversationIds } from '../channels/identities.ts'
import {
  contentTypeTest,
  MEMBER_LEFT_SUBJECT_PREFIX,
  MESSAGE_SUBJECT_PREFIX,
  type MemberLeftEvent,
  type MessagesCommittedEvent,
  type WireMessage,
} from '../conversations/bus-events.ts'
import { isConversationMember } from '../conversations/conversations.ts'
import { fetchMessages } from '../conversations/messages.ts'
import { groupConversations, MLS_CONTENT_TYPE } from '../e2e/groups.ts'
import {
  pendingReaddRequests,
  READD_REQUESTED_SUBJECT_PREFIX,
  type ReaddRequest,
  type ReaddRequestedEvent,
  refuseReaddRequest,
} from '../e2e/readd-requests.ts'
import { DEVICE_REVOKED_SUBJECT_PREFIX, type DeviceRevokedEvent } from '../identity/device-events.ts'
import type { ServerContext } from '../platform/context.ts'
import type { KeyProvider } from '../platform/keyring/key-provider.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import { listTenants } from '../tenancy/tenants.ts'
import { archivedThroughSeq } from './append.ts'
import { ArchiveCannotRejoin, inProcessDelivery } from './in-process-delivery.ts'
import {
  ARCHIVE_KEY_PACKAGES_WANTED_SUBJECT_PREFIX,
  markArchiveMemberPresent,
  PRESENCE_INTERVAL_MS,
} from './member-presence.ts'
import { ArchiveMemberStore } from './member-store.ts'

/**
 * What the archive member read: every secure message in clear, every change of a group's members, and every
 * public-channel message (opened with the tenant key; its text is as stored, card numbers already masked).
 */
export type ArchiveRecord =
  | {
      kind: 'public-message'
      tenantId: string
      conversationId: string
      seq: number
      messageId: string
      sender: { kind: string; id: string }
      envelope: Envelope
    }
  | {
      kind: 'message'
      tenantId: string
      conversationId: string
      seq: number
      sender: MemberIdentity
      plaintext: Uint8Array
      /** When the server accepted the message, not when the archive read it. */
      sentAt: Date
      /** The seq of the sender's earlier message this is a copy of (sent again for a member that could not read it). */
      copyOf?: number
    }
  | {
      kind: 'members-changed'
      tenantId: string
      conversationId: string
      seq: number
      epoch: bigint
      added: MemberIdentity[]
      removed: MemberIdentity[]
      /** Members that lost their state and came back in place of their earlier leaf. */
      rejoined: MemberIdentity[]
    }

/** Where decrypted records go: the compliance archive's store (until it lands, a counter and the tests' collector). */
export type ArchiveSink = (record: ArchiveRecord) => Promise<void> | void

export interface ArchivePartition {
  index: number
  count: number
}

/** `i/n` from the configuration: this process reads the conversations whose hash falls in partition i of n. */
export function parsePartition(value: string): ArchivePartition {
  const [index, count] = value.split('/').map(Number) as [number, number]
  return { index, count }
}

const FLUSH_MS = 1000
const DATA_KEY_NAME = 'archive-data-key'
const decoder = new TextDecoder()
/** Whether a batch of committed messages holds one the archive reads: secure, or of a public channel. */
const archived = contentTypeTest([MLS_CONTENT_TYPE, PUBLIC_MESSAGE_TYPE])

/**
 * The bank's compliance archive as a member of every secure conversation (an ordinary MLS member with its own keys,
 * so record-keeping is an end of the encryption, not a hole in it). One process, or several each taking a partition
 * of the conversations, reads every committed MLS message from the bus (and from the log after a restart), joins the
 * groups it is welcomed into, and hands what it decrypts to the sink.
 *
 * Its keys are its own: its MLS state is sealed under a data key per tenant that its own key-encryption key wraps (a
 * separate key file or HSM slot), never the live server's keyring.
 */
export class ArchiveMember {
  readonly #ctx: ServerContext
  readonly #credentialKey: SigningKey
  readonly #kek: KeyProvider
  readonly #sink: ArchiveSink
  readonly #partition: ArchivePartition
  readonly #tenants = new Map<string, Promise<{ messaging: SecureMessaging; store: ArchiveMemberStore }>>()
  readonly #work = new Set<Promise<void>>()
  /**
   * Records handed to the sink and not yet stored. Reading does not wait for them (the sink writes in groups), but the
   * member's group states are flushed only after them: a crash in between reads those messages again.
   */
  readonly #writes = new Set<Promise<void>>()
  /** Conversations it could not re-join, already reported (it tries again as each message comes: a commit may help). */
  readonly #blind = new Set<string>()
  #unsubscribe: (() => void) | undefined
  #unsubscribeRevoked: (() => void) | undefined
  #unsubscribeLeft: (() => void) | undefined
  #unsubscribeReadd: (() => void) | undefined
  #unsubscribeWanted: (() => void) | undefined
  #timer: NodeJS.Timeout | undefined
  #presenceTimer: NodeJS.Timeout | undefined

  private constructor(
    ctx: ServerContext,
    credentialKey: SigningKey,
    kek: KeyProvider,
    sink: ArchiveSink,
    partition: ArchivePartition,
  ) {
    this.#ctx = ctx
    this.#credentialKey = credentialKey
    this.#kek = kek
    this.#sink = sink
    this.#partition = partition
  }

  /** Starts reading: new messages from the bus at once, then whatever each tenant's groups hold that it has not read. */
  static async start(
    ctx: ServerContext,
    options: { credentialKey: SigningKey; kek: KeyProvider; sink: ArchiveSink; partition: ArchivePartition },
  ): Promise<ArchiveMember> {
    const member = new ArchiveMember(ctx, options.credentialKey, options.kek, options.sink, options.partition)
    member.#unsubscribe = ctx.bus.subscribe(`${MESSAGE_SUBJECT_PREFIX}>`, (_subject, payload) => {
      // Most of what commits on a busy node is neither: it is not parsed here.
      if (!archived(payload)) return
      const event = JSON.parse(decoder.decode(payload)) as MessagesCommittedEvent
      for (const message of event.messages) {
        if (!member.#owns(message.conversationId)) continue
        if (message.contentType === MLS_CONTENT_TYPE) member.#track(member.#read(event.tenantId, message))
        else if (message.contentType === PUBLIC_MESSAGE_TYPE) member.#track(member.#readPublic(event.tenantId, message))
      }
    })
    member.#unsubscribeRevoked = ctx.bus.subscribe(`${DEVICE_REVOKED_SUBJECT_PREFIX}>`, (_subject, payload) => {
      member.#track(member.#removeRevoked(JSON.parse(decoder.decode(payload)) as DeviceRevokedEvent))
    })
    member.#unsubscribeLeft = ctx.bus.subscribe(`${MEMBER_LEFT_SUBJECT_PREFIX}>`, (_subject, payload) => {
      const event = JSON.parse(decoder.decode(payload)) as MemberLeftEvent
      if (member.#owns(event.conversationId)) member.#track(member.#removeLeft(event))
    })
    member.#unsubscribeReadd = ctx.bus.subscribe(`${READD_REQUESTED_SUBJECT_PREFIX}>`, (_subject, payload) => {
      const event = JSON.parse(decoder.decode(payload)) as ReaddRequestedEvent
      if (member.#owns(event.conversationId)) {
        member.#track(member.#readdRequested(event.tenantId, event.conversationId))
      }
    })
    // A node without an archive member asks for the key packages of a tenant made since this one started.
    member.#unsubscribeWanted = ctx.bus.subscribe(`${ARCHIVE_KEY_PACKAGES_WANTED_SUBJECT_PREFIX}*`, (subject) => {
      if (member.#partition.index === 0) {
        member.#track(member.ensureTenant(subject.slice(ARCHIVE_KEY_PACKAGES_WANTED_SUBJECT_PREFIX.length)))
      }
    })
    member.#timer = setInterval(() => member.#track(member.#flush()), FLUSH_MS)
    member.#timer.unref()
    // Every node can then tell whether an archive member runs (readiness, the problem when none does).
    const partition = `${options.partition.index}/${options.partition.count}`
    await markArchiveMemberPresent(ctx, partition)
    member.#presenceTimer = setInterval(
      () => member.#track(markArchiveMemberPresent(ctx, partition)),
      PRESENCE_INTERVAL_MS,
    )
    member.#presenceTimer.unref()
    for (const tenant of await listTenants(ctx)) member.#track(member.#catchUp(tenant.id))
    return member
  }

  /**
   * Makes sure the archive of a tenant has key packages in the directory, called before one is claimed: a tenant made
   * after start gets them on its first secure conversation, and a quiet tenant's, aged towards the end of their
   * lifetime since the last one, are topped up.
   */
  async ensureTenant(tenantId: string): Promise<void> {
    const { messaging } = await this.#tenant(tenantId)
    await messaging.replenishKeyPackages()
  }

  /** Waits until everything received so far has been read and stored. */
  async idle(): Promise<void> {
    while (this.#work.size > 0) await Promise.all(this.#work)
    await this.#flush()
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.()
    this.#unsubscribeRevoked?.()
    this.#unsubscribeLeft?.()
    this.#unsubscribeReadd?.()
    this.#unsubscribeWanted?.()
    clearInterval(this.#timer)
    clearInterval(this.#presenceTimer)
    await this.idle()
  }

  #owns(conversationId: string): boolean {
    if (this.#partition.count === 1) return true
    const hash = createHash('sha256').update(conversationId).digest().readUInt32BE(0)
    return hash % this.#partition.count === this.#partition.index
  }

  #track(work: Promise<void>): void {
    const tracked = work.catch((error) => this.#ctx.log.error({ err: error }, 'archive member failed'))
    this.#work.add(tracked)
    void tracked.finally(() => this.#work.delete(tracked))
  }

  #tenant(tenantId: string) {
    let opened = this.#tenants.get(tenantId)
    if (!opened) {
      opened = (async () => {
        const store = new ArchiveMemberStore(this.#ctx.db, tenantId, await this.#dataKey(tenantId))
        const delivery = inProcessDelivery(this.#ctx, this.#credentialKey, tenantId)
        // Every event reaches the sink through onEvent, in log order, including those read while catching up
        // before a commit.
        const messaging = await SecureMessaging.open(delivery, {
          provider: nodeCryptoProvider,
          store,
          onEvent: (event) => this.#deliver(tenantId, event),
          // It sends nothing: it reads the copies the other members ask for.
          askAgain: false,
        })
        return { messaging, store }
      })()
      opened.catch(() => this.#tenants.delete(tenantId))
      this.#tenants.set(tenantId, opened)
    }
    return opened
  }

  /** The tenant's archive data key, made on first need and wrapped by the archive's own key-encryption key. */
  async #dataKey(tenantId: string): Promise<Buffer> {
    const aad = Buffer.from(`strongroom:archive-member:data-key:${tenantId}`, 'utf8')
    const load = () =>
      this.#ctx.db
        .selectFrom('archive_member_state')
        .select('sealed')
        .where('tenant_id', '=', tenantId)
        .where('name', '=', DATA_KEY_NAME)
        .executeTakeFirst()
    let row = await load()
    if (!row) {
      const { kekId, wrapped } = await this.#kek.wrap(randomBytes(32), aad)
      const sealed = Buffer.from(JSON.stringify({ kekId, wrapped: wrapped.toString('base64') }))
      await this.#ctx.db
        .insertInto('archive_member_state')
        .values({ tenant_id: tenantId, name: DATA_KEY_NAME, sealed })
        .onConflict((oc) => oc.doNothing())
        .execute()
      row = (await load()) as NonNullable<typeof row>
    }
    const { kekId, wrapped } = JSON.parse(decoder.decode(row.sealed)) as { kekId: string; wrapped: string }
    return this.#kek.unwrap(kekId, Buffer.from(wrapped, 'base64'), aad)
  }

  async #catchUp(tenantId: string): Promise<void> {
    const { messaging } = await this.#tenant(tenantId)
    await messaging.acceptWelcomes()
    // A group it holds no state of (its own store was lost or restored from an older backup) is re-joined as it is
    // read: by external commit in place of its earlier leaf, audited, from that commit on.
    for (const conversationId of await groupConversations(this.#ctx, tenantId)) {
      if (!this.#owns(conversationId)) continue
      await this.#unlessUnrecoverable(tenantId, conversationId, () => messaging.sync(conversationId))
    }
    const waiting = new Set((await pendingReaddRequests(this.#ctx, tenantId)).map((r) => r.conversationId))
    for (const conversationId of waiting) {
      if (this.#owns(conversationId)) await this.#readdRequested(tenantId, conversationId)
    }
    // Public conversations: whatever was said while no archive member ran, from the last archived message on.
    for (const conversationId of await publicConversationIds(this.#ctx, tenantId)) {
      if (!this.#owns(conversationId)) continue
      let after = await archivedThroughSeq(this.#ctx, tenantId, conversationId, 'public-message')
      for (;;) {
        const batch = await fetchMessages(this.#ctx, tenantId, conversationId, { afterSeq: after, limit: 200 })
        for (const message of batch) {
          if (message.contentType === PUBLIC_MESSAGE_TYPE) await this.#readPublic(tenantId, message)
        }
        if (batch.length < 200) break
        after = (batch.at(-1) as WireMessage).seq
      }
    }
  }

  async #read(tenantId: string, message: WireMessage): Promise<void> {
    const { messaging } = await this.#tenant(tenantId)
    // The commit that added the archive and its welcome were committed together: join, then read on.
    if (!(await messaging.isMember(message.conversationId))) await messaging.acceptWelcomes()
    await this.#unlessUnrecoverable(tenantId, message.conversationId, () => messaging.receive(message))
  }

  /**
   * Reads, unless the archive holds no state of the group and cannot re-join it (no GroupInfo to re-join from, or one
   * without the archive's leaf): nobody can add the archive back, so the archive is blind to that conversation until a
   * commit publishes a GroupInfo it can use. That is counted, and logged and audited once, for an operator and the
   * compliance officer; the rest reads on.
   */
  async #unlessUnrecoverable(tenantId: string, conversationId: string, read: () => Promise<unknown>): Promise<void> {
    try {
      await read()
      this.#blind.delete(conversationId)
    } catch (error) {
      if (!(error instanceof ArchiveCannotRejoin)) throw error
      this.#ctx.metrics.archiveMemberFailures.inc({ reason: 'cannot-rejoin' })
      if (this.#blind.has(conversationId)) return
      this.#blind.add(conversationId)
      this.#ctx.log.error(
        { tenantId, conversationId },
        'archive member holds no state of a group and cannot re-join it',
      )
      await this.#auditConversation(tenantId, conversationId, {
        action: 'e2e.archive.rejoin',
        outcome: 'failure',
        reason: 'the archive member holds no state of the group and cannot re-join it: nothing more is archived',
      })
    }
  }

  /** A public-channel message goes to the archive as it was stored (sealed with the tenant key, opened here). */
  async #readPublic(tenantId: string, message: WireMessage): Promise<void> {
    const { conversationId, sender, clientMessageId } = message
    const sealed = Buffer.from(message.ciphertext, 'base64')
    const envelope = await openEnvelope(this.#ctx, tenantId, { conversationId, sender, clientMessageId }, sealed)
    await this.#sink({
      kind: 'public-message',
      tenantId,
      conversationId,
      seq: message.seq,
      messageId: message.id,
      sender,
      envelope,
    })
    this.#ctx.metrics.archiveMemberRecords.inc({ kind: 'public-message' })
  }

  /**
   * A revoked device leaves the MLS groups of the conversations it was taken out of: the archive, a member of every
   * group, commits its removal at once, so the group keys change without waiting for an agent.
   */
  async #removeRevoked(event: DeviceRevokedEvent): Promise<void> {
    const { messaging } = await this.#tenant(event.tenantId)
    for (const conversationId of event.conversationIds) {
      if (!this.#owns(conversationId) || !(await messaging.isMember(conversationId))) continue
      await messaging.sync(conversationId)
      const members = await messaging.members(conversationId)
      if (!members.some((m) => m.kind === 'device' && m.id === event.deviceId)) continue
      await messaging.removeMembers(conversationId, [{ kind: 'device', id: event.deviceId }])
    }
  }

  /**
   * A member that left the conversation (an agent it was handed over from) leaves its MLS group too: every leaf of
   * theirs, each of their browsers, in one commit by the archive, so they read nothing said after the hand-over.
   */
  async #removeLeft(event: MemberLeftEvent): Promise<void> {
    const { tenantId, conversationId, member } = event
    if (member.kind !== 'staff' && member.kind !== 'device') return
    const { messaging } = await this.#tenant(tenantId)
    if (!(await messaging.isMember(conversationId))) return
    await messaging.sync(conversationId)
    // Back in the conversation meanwhile (handed back): its leaves stay.
    if (await isConversationMember(this.#ctx, tenantId, conversationId, member)) return
    const leaves = (await messaging.members(conversationId)).filter((m) => m.kind === member.kind && m.id === member.id)
    if (leaves.length === 0) return
    await messaging.removeMembers(conversationId, [{ kind: member.kind, id: member.id }])
  }

  async #readdRequested(tenantId: string, conversationId: string): Promise<void> {
    for (const request of await pendingReaddRequests(this.#ctx, tenantId, conversationId)) {
      await this.#readd(tenantId, request)
    }
  }

  /**
   * Adds a member of the conversation that asked to be (re-)added: one that lost its group state and could not re-join
   * by itself, or one the group never had (a customer's new phone, an agent the conversation was handed to). The
   * archive is always online and a member of every group, so nobody waits for an agent. Only a current member of the
   * conversation is added (a revoked device or a transferred agent has left it), in place of its earlier leaf if it has
   * one, in a commit every member sees; the commit clears the request, and any other request is refused and audited.
   * The check and the commit run as one step of the group, so two wake-ups for one request add the member once.
   */
  async #readd(tenantId: string, request: ReaddRequest): Promise<void> {
    const { messaging } = await this.#tenant(tenantId)
    const { conversationId, member } = request
    if (!(await messaging.isMember(conversationId))) return
    const system = { kind: 'system', id: null } as const
    const same = (m: ReaddRequest['member']) =>
      m.kind === member.kind && m.id === member.id && m.instance === member.instance
    await messaging.readdMember(conversationId, member, async () => {
      // Meanwhile re-added, or re-joined by itself (the commit that brought it back cleared the request).
      if (!(await pendingReaddRequests(this.#ctx, tenantId, conversationId)).some((r) => same(r.member))) return false
      if (await isConversationMember(this.#ctx, tenantId, conversationId, member)) return true
      await refuseReaddRequest(this.#ctx, tenantId, request, system, 'not a member of the conversation')
      return false
    })
  }

  async #deliver(tenantId: string, event: SecureEvent): Promise<void> {
    if (event.kind === 'unreadable') {
      this.#ctx.metrics.archiveMemberFailures.inc({ reason: event.reason })
      this.#ctx.log.warn(
        { conversationId: event.conversationId, seq: event.seq, reason: event.reason },
        'archive could not read a message',
      )
      return
    }
    if (event.kind === 'joined') {
      // The archive's own state of the group was unusable and it re-joined: what was sent in between is not here.
      await this.#auditConversation(tenantId, event.conversationId, {
        action: 'e2e.archive.rejoin',
        outcome: 'success',
        reason: 'the archive member’s group state was unusable; it reads again from the re-join on',
        details: { seq: event.seq, via: event.via },
      })
    } else if (event.kind === 'message') {
      const { conversationId, seq, sender, bytes, sentAt, copyOf } = event
      this.#write({
        kind: 'message',
        tenantId,
        conversationId,
        seq,
        sender,
        plaintext: bytes,
        sentAt: new Date(sentAt),
        ...(copyOf === undefined ? {} : { copyOf }),
      })
    } else if (event.kind === 'members-changed') {
      const { conversationId, seq, epoch, added, removed, rejoined } = event
      this.#write({ kind: 'members-changed', tenantId, conversationId, seq, epoch, added, removed, rejoined })
      if (event.removedSelf) {
        // Nobody may take the archive out of a secure conversation: say so loudly, in the audit log.
        await this.#auditConversation(tenantId, conversationId, {
          action: 'e2e.archive.removed',
          outcome: 'failure',
          reason: 'a commit removed the archive from the conversation’s group',
        })
      }
    }
    this.#ctx.metrics.archiveMemberRecords.inc({ kind: event.kind })
  }

  /** What the archive member itself did, or failed to do, in a conversation: the audit log's system entry. */
  #auditConversation(
    tenantId: string,
    conversationId: string,
    entry: Pick<AuditEvent, 'action' | 'outcome' | 'reason' | 'details'>,
  ): Promise<void> {
    return recordAudit(this.#ctx.db, {
      tenantId,
      actor: { kind: 'system', id: null },
      target: { kind: 'conversation', id: conversationId },
      ...entry,
    })
  }

  /** Hands a record to the sink without waiting for it to be stored (see #writes). */
  #write(record: ArchiveRecord): void {
    const written = Promise.resolve(this.#sink(record))
    this.#writes.add(written)
    void written.then(
      () => {
        this.#writes.delete(written)
        if (record.kind === 'message')
          this.#ctx.metrics.archiveLag.observe((Date.now() - record.sentAt.getTime()) / 1000)
      },
      (error) => this.#ctx.log.error({ err: error }, 'archive member could not store a record'),
    )
  }

  async #flush(): Promise<void> {
    // A record whose write failed stays here: the group states stay as they were before it, for a restart to read it
    // again.
    await Promise.all(this.#writes)
    for (const opened of this.#tenants.values()) {
      // A tenant that could not be opened has nothing to flush (the failure is logged where it was opened, and it is
      // opened again on its next event); the other tenants' stores are flushed all the same.
      const tenant = await opened.catch(() => undefined)
      await tenant?.store.flush()
    }
  }
}

/** After the archive's KEK was rotated: re-wraps the archive member's data keys still under an older KEK. */
export async function rewrapArchiveMemberKeys(db: ServerContext['db'], kek: KeyProvider): Promise<number> {
  const current = await kek.currentKekId()
  return db.transaction().execute(async (trx) => {
    const rows = await trx
      .selectFrom('archive_member_state')
      .select(['tenant_id', 'sealed'])
      .where('name', '=', DATA_KEY_NAME)
      .forUpdate()
      .execute()
    let rewrapped = 0
    for (const row of rows) {
      const stored = JSON.parse(decoder.decode(row.sealed)) as { kekId: string; wrapped: string }
      if (stored.kekId === current) continue
      const aad = Buffer.from(`strongroom:archive-member:data-key:${row.tenant_id}`, 'utf8')
      const key = await kek.unwrap(stored.kekId, Buffer.from(stored.wrapped, 'base64'), aad)
      const { kekId, wrapped } = await kek.wrap(key, aad)
      await trx
        .updateTable('archive_member_state')
        .set({ sealed: Buffer.from(JSON.stringify({ kekId, wrapped: wrapped.toString('base64') })) })
        .where('tenant_id', '=', row.tenant_id)
        .where('name', '=', DATA_KEY_NAME)
        .execute()
      rewrapped++
    }
    return rewrapped
  })
}
