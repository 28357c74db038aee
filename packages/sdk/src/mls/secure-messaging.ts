import { decodeJwt } from 'jose'
import { type CryptoProvider, decodeMlsMessage, getCiphersuiteFromName, getCiphersuiteImpl } from 'ts-mls'
import type { MemberClient } from '../client.ts'
import { ClientCore } from '../clients/client-core.ts'
import { base64ToBytes, bytesToBase64, randomId } from '../encoding.ts'
import { StrongroomError } from '../errors.ts'
import type { Message, MlsCipherSuite } from '../protocol.ts'
import type { MessageStream } from '../stream.ts'
import {
  conflictEpoch,
  type DeliveryService,
  httpDeliveryService,
  isEpochConflict,
  isRejoinRefused,
  type MemberRef,
  MLS_CONTENT_TYPE,
  type PendingWelcome,
} from './delivery-service.ts'
import { secureGroupClientConfig } from './group-config.ts'
import {
  credentialAuthorityService,
  isMemberRef,
  leafKeyOf,
  type MemberCredentialClaims,
  type MemberIdentity,
  memberOfClaims,
  mlsCredential,
} from './member-credential.ts'
import {
  generateKeyPackages,
  type KeyPackageSecrets,
  type LocalMember,
  type PendingCommit,
  SecureGroup,
  SecureGroupError,
  type SecureGroupErrorCode,
} from './secure-group.ts'
import { inProcessExclusive, type SecureStore } from './secure-store.ts'
import {
  decodeSignal,
  encodeSignal,
  MAX_SIGNALS_BETWEEN_MESSAGES,
  SIGNAL_MARKER,
  type Signal,
  type SignalEvent,
} from './signals.ts'

const DEFAULT_SUITE: MlsCipherSuite = 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'
const KEY_PACKAGE_BATCH = 20
const MAX_REBASES = 5
const GROUP_CACHE_SIZE = 500
const PAGE = 200
/** Set while the key packages in the directory are an earlier identity's, until fresh ones replace them. */
const REPLACE_KEY_PACKAGES = 'mls/replace-key-packages'

/** What reading a secure conversation produced, in log order. */
export type SecureEvent =
  | {
      kind: 'message'
      conversationId: string
      seq: number
      sender: MemberIdentity
      text: string
      bytes: Uint8Array
      /** When the server accepted it into the log (ISO 8601): the time it was sent, whoever reads it later. */
      sentAt: string
      /** When the sender made it disappear: keep it no longer than this (ISO 8601), or null. */
      expiresAt: string | null
      /**
       * Set when this message is its sender's copy of its own earlier message at that seq, sent again because another
       * member could not read it: the same message, to be kept once (the archive keeps it under the original's seq).
       */
      copyOf?: number
    }
  | {
      /** A message in the log that this member could not read (tampered, from a removed sender, not for it). */
      kind: 'unreadable'
      conversationId: string
      seq: number
      reason: SecureGroupErrorCode
      /** Another member's message: this member asked the group for it again (its sender, if it kept it, re-sends it). */
      resendRequested: boolean
    }
  | {
      /** Another member could not read `of.seq`, which this member sent, and asked for it again. */
      kind: 'resend-requested'
      conversationId: string
      seq: number
      requester: MemberIdentity
      of: { seq: number }
    }
  | {
      /** This member sent again, as `seq`, the message `of` that another member could not read: once per message. */
      kind: 'resent'
      conversationId: string
      seq: number
      of: number
    }
  | {
      kind: 'members-changed'
      conversationId: string
      seq: number
      epoch: bigint
      added: MemberIdentity[]
      removed: MemberIdentity[]
      /** Members back in place of their earlier selves: they lost their group state and re-joined or were re-added. */
      rejoined: MemberIdentity[]
      /** This member was removed (or replaced by another instance of itself): it reads nothing more here. */
      removedSelf: boolean
    }
  | {
      /**
       * This member came into the group with no state from before: by a welcome (added, or re-added at its request)
       * or by its own external commit after losing its state. It reads from `seq` on; what came before is not
       * readable on this device (those keys were never its own, or went with the lost state).
       */
      kind: 'joined'
      conversationId: string
      seq: number
      epoch: bigint
      via: 'welcome' | 'external-commit'
    }
  | {
      /**
       * This member holds no usable state for the group and could not re-join by itself: it asked to be re-added
       * (the archive member does that at once). Reading resumes with the welcome.
       */
      kind: 'rejoin-requested'
      conversationId: string
    }

/** What a member kept of a message it read or sent (with `keepTexts`), until the message expires. */
export type KeptText =
  | { kind: 'text'; text: string }
  | { kind: 'unreadable'; resendRequested: boolean }
  /** A message with no text of its own (a request to send one again, or a copy of one already read): show nothing. */
  | { kind: 'control' }

// What is kept per message: 1 then the text's bytes; 0 alone for a message that could not be decrypted, 2 when it was
// asked for again; 3 for a message that carries no text to show.
const UNREADABLE = new Uint8Array([0])
const UNREADABLE_ASKED = new Uint8Array([2])
const CONTROL = new Uint8Array([3])
/**
 * Marks, in a message's clear authenticated data, what carries no text: a member's request that the message at a seq
 * be sent again (the seq is in the encrypted content), and the copy sent in answer (which names the seq it copies).
 */
const RESEND_REQUEST = 'strongroom/resend-request'
const RESEND_OF = 'strongroom/resend-of/'
const resentKey = (conversationId: string, seq: number) => `mls/resent/${conversationId}/${seq}`
/** What this member sent, kept to send again if others ask: `sentIndexKey` lists the seqs and their epochs. */
const sentKey = (conversationId: string, seq: number) => `mls/sent/${conversationId}/${seq}`
const sentIndexKey = (conversationId: string) => `mls/sent-index/${conversationId}`
/** At most this many of its own messages a member keeps per conversation to send again (the latest). */
export const SENT_KEPT = 100
const readable = (bytes: Uint8Array) => {
  const kept = new Uint8Array(bytes.length + 1)
  kept[0] = 1
  kept.set(bytes, 1)
  return kept
}
const textKey = (conversationId: string, seq: number) => `mls/text/${conversationId}/${seq}`
const sendingKey = (conversationId: string, clientMessageId: string) =>
  `mls/sending/${conversationId}/${clientMessageId}`

interface StoredKeyPackage {
  message: string
  initPrivateKey: string
  hpkePrivateKey: string
}

/**
 * End-to-end encrypted conversations for one device or staff member: it holds the member's MLS identity, keeps
 * groups in the store, and talks to the delivery service. Operations on one conversation run one at a time (the group
 * state advances with each), every new state is stored before anything leaves, and conflicts with other members'
 * commits are resolved by reading what came first and trying again.
 *
 * A member that finds it holds no state for a group it belongs to (a cleared store, a new browser) or holds one that
 * cannot go on (a commit it could not apply) recovers by itself: it joins from a welcome waiting for it, else
 * re-joins by external commit in place of its own earlier leaf, else asks to be re-added. What was sent before the
 * recovery stays unreadable on this device; a member removed from a group is never brought back this way.
 *
 * @example
 * const secure = await SecureMessaging.open(client, { provider: nodeCryptoProvider, store })
 * await secure.createGroup(conversationId, [{ kind: 'device', id: phoneId }, { kind: 'archive', id: 'archive' }])
 * await secure.send(conversationId, 'Your card is blocked; a new one is on its way.')
 * client.stream({ onMessage: async (m) => console.log(await secure.receive(m)) })
 */
export class SecureMessaging {
  readonly #delivery: DeliveryService
  /** Welcomes this member deleted: two readers that fetched the same one delete it once. */
  readonly #spentWelcomes = new Set<string>()
  readonly #store: SecureStore
  readonly #member: LocalMember
  readonly #self: MemberIdentity
  readonly #queues = inProcessExclusive()
  /**
   * Per conversation: application messages going over HTTP, one request at a time. Sends are pipelined, and requests
   * in flight together (or a closed stream's sends falling back together) could be committed out of the order the
   * member wrote them in.
   */
  readonly #overHttpInOrder = inProcessExclusive()
  /** Decoded groups of recent conversations, with the bytes stored for each (see #remember). */
  readonly #groups = new Map<string, { group: SecureGroup; bytes: Uint8Array }>()
  /** Conversations whose decoded group another instance sharing the store may have moved on: checked before use. */
  readonly #unverified = new Set<string>()
  readonly #onEvent: ((event: SecureEvent) => void | Promise<void>) | undefined
  readonly #keepTexts: boolean
  readonly #asksAgain: boolean
  /** Per conversation: seqs of other members' messages this member could not read, to ask for again. */
  readonly #toAsk = new Map<string, Set<number>>()
  /** Per conversation: seqs of this member's messages others asked for again, to re-send once. */
  readonly #toAnswer = new Map<string, Set<number>>()
  /** The stream application messages go over, when the app gave one (`sendOver`); HTTP otherwise. */
  #stream: MessageStream | undefined
  /** Per conversation: sends encrypted and on their way, not yet acknowledged (and kept). */
  readonly #sending = new Map<string, Set<Promise<unknown>>>()
  /** Per conversation: acknowledged sends waiting for the group's next turn to be kept (see `#keepSentInTurn`). */
  readonly #toKeepSent = new Map<string, { sent: SentToKeep[]; kept: Promise<void> }>()
  /** Per conversation: the epoch and how many signals this member sent in it since its last stored message. */
  readonly #signalsSent = new Map<string, { epoch: bigint; count: number }>()

  private constructor(
    delivery: DeliveryService,
    store: SecureStore,
    member: LocalMember,
    self: MemberIdentity,
    options: {
      onEvent?: ((event: SecureEvent) => void | Promise<void>) | undefined
      keepTexts?: boolean | undefined
      askAgain?: boolean | undefined
    },
  ) {
    this.#delivery = delivery
    this.#onEvent = options.onEvent
    this.#keepTexts = options.keepTexts ?? false
    this.#asksAgain = options.askAgain ?? true
    this.#store = store
    this.#member = member
    this.#self = self
  }

  /**
   * Opens the member's MLS identity from the store, or makes one: a signature key pair and a credential for it from
   * the server's credential authority. Then tops up the member's key packages in the directory.
   */
  static async open(
    service: MemberClient | DeliveryService,
    options: {
      provider: CryptoProvider
      store: SecureStore
      /** One of the suites the server accepts for a group (`mlsCipherSuites`). */
      suite?: MlsCipherSuite
      /**
       * Called with every event in log order, including those read while catching up before a send or a commit
       * (which `send` does not return). A promise it returns is awaited before the next message is read.
       */
      onEvent?: (event: SecureEvent) => void | Promise<void>
      /**
       * Keep the text of every message read or sent in the store, until the message's expiry, for `keptText`: MLS
       * keys move on with every message, so a message decrypts once only. Expired texts are erased when the member
       * opens (however long the app was closed or offline) and whenever the store's own timer or `purgeExpired` says.
       */
      keepTexts?: boolean
      /**
       * Ask the group to send again another member's message this member could not read (true unless said): its
       * sender, when it kept the text, sends a copy once. The archive member, which sends nothing, reads the copies
       * others asked for.
       */
      askAgain?: boolean
    },
  ): Promise<SecureMessaging> {
    const delivery = service instanceof ClientCore ? httpDeliveryService(service) : service
    const suiteName = options.suite ?? DEFAULT_SUITE
    const suite = await getCiphersuiteImpl(getCiphersuiteFromName(suiteName), options.provider)
    const store = options.store
    const identity = () => SecureMessaging.#signatureKeys(store, suite)
    const made = await (store.exclusive ? store.exclusive('mls/identity', identity) : identity())
    if (!made) return SecureMessaging.open(service, options)
    const { signKey, publicKey } = made
    let credentialBytes = await store.get('mls/credential')
    if (!credentialBytes) {
      credentialBytes = new TextEncoder().encode(await delivery.issueCredential(publicKey))
      await store.set('mls/credential', credentialBytes)
    }
    const signed = new TextDecoder().decode(credentialBytes)
    const claims = decodeJwt(signed) as MemberCredentialClaims
    const keys = await delivery.credentialAuthorityKeys()
    const member: LocalMember = {
      suite,
      config: secureGroupClientConfig(credentialAuthorityService(keys, claims.tid)),
      credential: mlsCredential(signed),
      signatureKey: { signKey, publicKey },
    }
    const { customerId: _customer, ...self } = memberOfClaims(claims)
    const messaging = new SecureMessaging(delivery, store, member, self, options)
    // What it kept (texts it read, messages it sent, to send again) and what expired meanwhile goes first.
    await messaging.purgeExpired()
    await messaging.replenishKeyPackages()
    return messaging
  }

  /**
   * The member's signature key pair, made and stored if the store holds none. Undefined when another process sharing
   * the store made one at the same moment (then that one is the member's: open again).
   */
  static async #signatureKeys(
    store: SecureStore,
    suite: LocalMember['suite'],
  ): Promise<{ signKey: Uint8Array; publicKey: Uint8Array } | undefined> {
    const signKey = await store.get('mls/signature-key')
    const publicKey = await store.get('mls/signature-public-key')
    if (signKey && publicKey) return { signKey, publicKey }
    const pair = await suite.signature.keygen()
    // A new identity: key packages in the directory from before (a lost store) cannot be opened any more.
    const replace = new Uint8Array([1])
    if (store.setAllIfAbsent) {
      const identity: [string, Uint8Array][] = [
        ['mls/signature-key', pair.signKey],
        ['mls/signature-public-key', pair.publicKey],
        [REPLACE_KEY_PACKAGES, replace],
      ]
      if (!(await store.setAllIfAbsent(identity))) return undefined
    } else {
      await store.set(REPLACE_KEY_PACKAGES, replace)
      await store.set('mls/signature-key', pair.signKey)
      await store.set('mls/signature-public-key', pair.publicKey)
    }
    return { signKey: pair.signKey, publicKey: pair.publicKey }
  }

  /** Who this member is, as the other members see it. */
  get self(): MemberIdentity {
    return this.#self
  }

  /**
   * Uploads key packages when the directory says the stock is low, and a last-resort one if none is stored; all anew,
   * replacing those in the directory, when this member's identity is new (its store was lost).
   */
  async replenishKeyPackages(): Promise<void> {
    const replace = (await this.#store.get(REPLACE_KEY_PACKAGES)) !== undefined
    const stock = replace ? { low: true, lastResort: false } : await this.#delivery.keyPackageStock(this.#self.instance)
    if (!stock.low && stock.lastResort) return
    const fresh = stock.low ? await generateKeyPackages(this.#member, KEY_PACKAGE_BATCH) : []
    const lastResort = stock.lastResort ? undefined : (await generateKeyPackages(this.#member, 1))[0]
    for (const kp of [...fresh, ...(lastResort ? [lastResort] : [])]) await this.#keepKeyPackage(kp)
    await this.#delivery.uploadKeyPackages(
      fresh.map((kp) => kp.message),
      lastResort?.message,
      { replace },
    )
    if (replace) await this.#store.delete(REPLACE_KEY_PACKAGES)
  }

  /**
   * Makes the conversation end-to-end encrypted: a new group with this member, then one commit adding the others
   * (their key packages claimed from the directory), all welcomed. `ifAvailable` members are added too when they have
   * a key package (a customer's other device that never opened secure messaging has none), and left out otherwise.
   * The key packages are claimed before the group is registered, so a member that cannot be added leaves no group.
   */
  createGroup(
    conversationId: string,
    members: MemberRef[],
    options: { ifAvailable?: MemberRef[] } = {},
  ): Promise<void> {
    return this.#serialized(conversationId, async () => {
      const add = await this.#claim(conversationId, members)
      for (const member of options.ifAvailable ?? []) {
        try {
          add.push(...(await this.#claim(conversationId, [member])))
        } catch (error) {
          if (!(error instanceof StrongroomError && error.type.endsWith('/e2e/no-key-package'))) throw error
        }
      }
      const groupId = crypto.getRandomValues(new Uint8Array(32))
      const group = await SecureGroup.create(this.#member, groupId)
      // The member's suite was made from one of the server's suites (`open`'s `suite`).
      await this.#delivery.registerGroup(conversationId, groupId, this.#member.suite.name as MlsCipherSuite)
      await this.#saveGroup(conversationId, group)
      await this.#commitWith(conversationId, add, () => false)
    })
  }

  /**
   * Adds members (a new device of the customer, another agent) to the conversation's group. A member that is in the
   * group already is added again in place of its earlier leaf: how a member that lost its state is re-added.
   */
  addMembers(conversationId: string, members: MemberRef[]): Promise<void> {
    return this.#serialized(conversationId, async () => {
      await this.#commitWith(conversationId, await this.#claim(conversationId, members), () => false)
    })
  }

  /**
   * Re-adds a member that lost its group state and asked to be, in place of its leaf. It reads everything first, then
   * `stillWanted` decides on the members as they are (the request may have been granted meanwhile): the check and the
   * commit are one step of the group, so two calls for one request re-add the member once. Returns whether it did.
   */
  readdMember(
    conversationId: string,
    member: MemberRef,
    stillWanted: (members: MemberIdentity[]) => Promise<boolean>,
  ): Promise<boolean> {
    return this.#serialized(conversationId, async () => {
      await this.#catchUp(conversationId)
      const members = (await this.#loadGroup(conversationId)).members().map((m) => m.identity)
      if (!(await stillWanted(members))) return false
      await this.#commitWith(conversationId, await this.#claim(conversationId, [member]), () => false)
      return true
    })
  }

  /**
   * Removes members from the group: from the next epoch on they can decrypt nothing. A ref naming an instance removes
   * that one of a staff member's browsers alone; without, every leaf of the person goes.
   */
  removeMembers(conversationId: string, members: MemberRef[]): Promise<void> {
    const gone = (m: MemberIdentity) => members.some((r) => isMemberRef(m, r))
    return this.#serialized(conversationId, () => this.#commitWith(conversationId, [], gone))
  }

  /** Whether this member holds the conversation's group (and has not been removed from it). */
  async isMember(conversationId: string): Promise<boolean> {
    if (!(await this.#holdsGroup(conversationId))) return false
    return !(await this.#loadGroup(conversationId)).removed
  }

  /**
   * Whether this member holds the conversation's group but is out of it: removed by a commit, or replaced by another
   * copy of itself (another browser of the same agent). `rejoin` takes its place back, if it is still in the
   * conversation.
   */
  async wasRemoved(conversationId: string): Promise<boolean> {
    return (await this.#holdsGroup(conversationId)) && (await this.#loadGroup(conversationId)).removed
  }

  /** The group's members as this member verified them. */
  async members(conversationId: string): Promise<MemberIdentity[]> {
    return (await this.#loadGroup(conversationId)).members().map((m) => m.identity)
  }

  /**
   * Encrypts and sends text (or bytes) to the conversation; behind another member's commit, it catches up first, and
   * without a usable group state it recovers one first (throwing `rejoin-pending` if it had to ask to be re-added).
   * With `expiresAt`, the message disappears then, from the members' screens and from the server.
   */
  send(conversationId: string, content: string | Uint8Array, options: { expiresAt?: Date } = {}): Promise<Message> {
    const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content
    const sending = this.#sendPipelined(conversationId, bytes, randomId(), options)
    const inFlight = this.#sending.get(conversationId) ?? new Set()
    this.#sending.set(conversationId, inFlight)
    const settled = sending.then(
      () => void this.#signalsSent.delete(conversationId),
      () => undefined,
    )
    inFlight.add(settled)
    void settled.then(() => {
      inFlight.delete(settled)
      if (inFlight.size === 0 && this.#sending.get(conversationId) === inFlight) this.#sending.delete(conversationId)
    })
    return sending
  }

  /**
   * Sends application messages over this stream from now on (undefined: over HTTP again). A send then does not wait
   * for the acknowledgement of the one before it: the conversation's group state is held only while a message is
   * encrypted, so messages follow each other on the socket as fast as they are encrypted, each acknowledged once
   * committed, in order. Commits, welcomes and everything else stay on HTTP, where their order is decided. A message
   * on its way when the stream is closed goes over HTTP under the same client message id (kept once).
   *
   * @example
   * const stream = client.stream({ onMessage: (m) => void secure.receive(m) })
   * secure.sendOver(stream)
   * await Promise.all(texts.map((text) => secure.send(conversationId, text)))
   */
  sendOver(stream: MessageStream | undefined): void {
    this.#stream = stream
  }

  // ── Signals: typing and read indicators, ephemeral MLS application messages (see signals.ts) ──

  /**
   * Encrypts a signal for the group and sends it over the stream given to `sendOver`, to the members connected now.
   * Resolves true once relayed; false when it did not go and will not (no open stream, no usable group here, a commit
   * came first, or MAX_SIGNALS_BETWEEN_MESSAGES reached): a late indicator is a wrong one, so none is retried.
   *
   * @example
   * const pacer = new SignalPacer()
   * if (pacer.typing(conversationId)) void secure.signal(conversationId, { kind: 'typing' })
   */
  async signal(conversationId: string, signal: Signal): Promise<boolean> {
    const stream = this.#stream
    if (stream?.state !== 'open') return false
    const ciphertext = await this.#serialized(conversationId, async () => {
      if (!(await this.#holdsGroup(conversationId))) return undefined
      const group = await this.#loadGroup(conversationId)
      if (group.removed) return undefined
      const sent = this.#signalsSent.get(conversationId)
      const count = sent?.epoch === group.epoch ? sent.count : 0
      if (count >= MAX_SIGNALS_BETWEEN_MESSAGES) return undefined
      const { message, group: next } = await group.encrypt(
        encodeSignal(signal),
        new TextEncoder().encode(SIGNAL_MARKER),
      )
      await this.#saveGroup(conversationId, next)
      this.#signalsSent.set(conversationId, { epoch: group.epoch, count: count + 1 })
      return message
    })
    if (!ciphertext) return false
    return stream.signal(conversationId, ciphertext).then(
      () => true,
      () => false,
    )
  }

  /**
   * Reads another member's signal from the stream (`onSignal`): the signal with its sender as the group authenticated
   * it, or undefined for anything else (not readable here, of an epoch this member has not reached, not marked as a
   * signal). A message that is not marked a signal leaves the group state as it was, so that a stored message relayed
   * as a signal still decrypts when the log delivers it.
   */
  readSignal(received: { conversationId: string; ciphertext: Uint8Array }): Promise<SignalEvent | undefined> {
    const { conversationId } = received
    return this.#serialized(conversationId, async () => {
      if (!(await this.#holdsGroup(conversationId))) return undefined
      const group = await this.#loadGroup(conversationId)
      let processed: Awaited<ReturnType<SecureGroup['process']>>
      try {
        processed = await group.process(received.ciphertext)
      } catch (error) {
        if (error instanceof SecureGroupError) return undefined
        throw error
      }
      const { group: next, event } = processed
      if (event.kind !== 'application' || new TextDecoder().decode(event.authenticatedData) !== SIGNAL_MARKER) {
        // Processing wiped the keys it used in the decoded state: the stored state is decoded again next time.
        this.#groups.delete(conversationId)
        return undefined
      }
      await this.#saveGroup(conversationId, next)
      const signal = decodeSignal(event.plaintext)
      return signal && { conversationId, sender: event.sender, signal }
    })
  }

  /**
   * Drops this member's state of the group and re-joins it, as when the state was lost: for a member that another
   * instance of itself (another browser of the same agent) replaced, when the user picks this one to go on with.
   */
  rejoin(conversationId: string): Promise<SecureEvent[]> {
    return this.#serialized(conversationId, async () => {
      await this.#forgetGroup(conversationId)
      return this.#emit(await this.#recover(conversationId))
    })
  }

  /**
   * Reads one message the stream or the API delivered. Messages are applied in log order: a gap is filled from the
   * server first, and anything already read is ignored. Returns what the messages up to this one meant.
   */
  receive(message: Message): Promise<SecureEvent[]> {
    return this.#serialized(message.conversationId, async () => {
      const read = await this.#readSeq(message.conversationId)
      if (message.seq <= read) return []
      const events = message.seq > read + 1 ? await this.#catchUp(message.conversationId) : await this.#apply(message)
      return [...events, ...(await this.#followUp(message.conversationId))]
    })
  }

  /**
   * The text of a message this member read or sent, as kept with `keepTexts`; undefined when nothing is kept (never
   * read here, sent from another session, or expired). It waits for what is under way in the conversation, so a
   * message being sent is kept before it is asked for; with the message's client id, a message another instance
   * sharing the store (a tab) is still sending is found too.
   */
  async keptText(conversationId: string, seq: number, clientMessageId?: string): Promise<KeptText | undefined> {
    await Promise.all(this.#sending.get(conversationId) ?? [])
    return this.#serialized(conversationId, async () => {
      const kept =
        (await this.#store.get(textKey(conversationId, seq))) ??
        (clientMessageId === undefined ? undefined : await this.#store.get(sendingKey(conversationId, clientMessageId)))
      if (!kept) return undefined
      if (kept[0] === 1) return { kind: 'text', text: new TextDecoder().decode(kept.subarray(1)) }
      if (kept[0] === 3) return { kind: 'control' }
      return { kind: 'unreadable', resendRequested: kept[0] === 2 }
    })
  }

  /** Erases what expired from the store (kept texts); returns how many values went. Works offline. */
  purgeExpired(now = new Date()): Promise<number> {
    return this.#store.purgeExpired?.(now) ?? Promise.resolve(0)
  }

  /** Reads everything new in a conversation from the server. */
  sync(conversationId: string): Promise<SecureEvent[]> {
    return this.#serialized(conversationId, async () => [
      ...(await this.#catchUp(conversationId)),
      ...(await this.#followUp(conversationId)),
    ])
  }

  /** Joins every group this member was added to while away; returns the conversations joined. */
  async acceptWelcomes(): Promise<string[]> {
    const welcomes = await this.#delivery.pendingWelcomes(this.#self.instance)
    const joined: string[] = []
    for (const w of welcomes) {
      await this.#serialized(w.conversationId, async () => {
        // Two readers may fetch the same welcome; the group is joined once.
        if (await this.isMember(w.conversationId)) {
          await this.#deleteWelcome(w.id).catch(() => undefined)
          return
        }
        if (await this.#joinFromWelcome(w)) joined.push(w.conversationId)
      })
    }
    if (joined.length > 0) await this.replenishKeyPackages()
    return joined
  }

  async #catchUp(conversationId: string): Promise<SecureEvent[]> {
    const events: SecureEvent[] = []
    let after = await this.#readSeq(conversationId)
    for (;;) {
      const batch = await this.#delivery.listMessages(conversationId, after, PAGE)
      let joined = false
      for (const message of batch) {
        const read = await this.#apply(message)
        events.push(...read)
        const last = read.at(-1)
        // Nothing more is readable until the member is (re-)added; the welcome will say where to go on from.
        if (last?.kind === 'rejoin-requested') return events
        // (Re-)joined: reading goes on after the commit it joined with, and what lies before it is passed over.
        joined = last?.kind === 'joined'
        after = last?.kind === 'joined' ? last.seq : message.seq
        if (joined) break
      }
      if (!joined && batch.length < PAGE) return events
    }
  }

  async #apply(message: Message): Promise<SecureEvent[]> {
    return this.#emit(await this.#read(message))
  }

  async #emit(events: SecureEvent[]): Promise<SecureEvent[]> {
    for (const event of events) await this.#onEvent?.(event)
    return events
  }

  async #read(message: Message): Promise<SecureEvent[]> {
    const { conversationId, seq } = message
    if (message.contentType !== MLS_CONTENT_TYPE) {
      await this.#setReadSeq(conversationId, seq)
      return []
    }
    const fromSelf = message.sender.kind === this.#self.kind && message.sender.id === this.#self.id
    if (!(await this.#holdsGroup(conversationId))) {
      // Its own earlier messages say nothing; anyone else's means it is missing a group it belongs to. So do those of
      // a staff member's other browsers, which the delivery service names as this member too.
      if (!fromSelf || this.#self.instance !== undefined) return this.#recover(conversationId)
      await this.#setReadSeq(conversationId, seq)
      return []
    }
    const group = await this.#loadGroup(conversationId)
    const bytes = base64ToBytes(message.ciphertext)
    // A member cannot decrypt what it sent itself, and its own commits were applied when accepted; the same member's
    // other instance (another browser of the same agent) is someone else as far as the group goes.
    if (fromSelf && (await group.sentByThisLeaf(bytes))) {
      await this.#setReadSeq(conversationId, seq)
      return []
    }
    let processed: Awaited<ReturnType<SecureGroup['process']>>
    try {
      processed = await group.process(bytes)
    } catch (error) {
      if (!(error instanceof SecureGroupError)) throw error
      // Another member's application message this member should have read: it asks for it again. A commit it cannot
      // apply, or a group it has left, is no message anyone can send again.
      const ask =
        this.#asksAgain &&
        !fromSelf &&
        isPrivateMessage(bytes) &&
        error.code !== 'removed' &&
        error.code !== 'future-epoch'
      const unreadable: SecureEvent = {
        kind: 'unreadable',
        conversationId,
        seq,
        reason: error.code,
        resendRequested: ask,
      }
      if (error.code === 'future-epoch') {
        // The log is read in order, so a later epoch means a commit this state could not apply (or its own commit,
        // accepted but never stored) lies behind: the state is of no more use.
        await this.#forgetGroup(conversationId)
        return [unreadable, ...(await this.#recover(conversationId))]
      }
      // One bad message must not block the conversation: it is reported and passed over, the group unchanged.
      if (ask) queued(this.#toAsk, conversationId).add(seq)
      await this.#keep(message, ask ? UNREADABLE_ASKED : UNREADABLE)
      await this.#setReadSeq(conversationId, seq)
      return [unreadable]
    }
    const { group: next, event } = processed
    const marker = event.kind === 'application' ? new TextDecoder().decode(event.authenticatedData) : ''
    if (marker === SIGNAL_MARKER && event.kind === 'application') {
      // A signal is never stored: one in the log (put there by whoever writes the database) is shown as nothing.
      await this.#keep(message, CONTROL)
      await this.#saveGroup(conversationId, next)
      await this.#setReadSeq(conversationId, seq)
      return []
    }
    if (marker === RESEND_REQUEST && event.kind === 'application') {
      await this.#keep(message, CONTROL)
      await this.#saveGroup(conversationId, next)
      await this.#setReadSeq(conversationId, seq)
      const request = resendRequestOf(event.plaintext)
      if (!request) return []
      const mine = request.sender.kind === this.#self.kind && request.sender.id === this.#self.id
      if (mine) queued(this.#toAnswer, conversationId).add(request.seq)
      return mine
        ? [{ kind: 'resend-requested', conversationId, seq, requester: event.sender, of: { seq: request.seq } }]
        : []
    }
    // A copy of a message this member read already (others asked for it): shown once, where it was first.
    const copyOf = marker.startsWith(RESEND_OF) ? await this.#copied(message, marker) : undefined
    const duplicate = copyOf !== undefined && (await this.#store.get(textKey(conversationId, copyOf)))?.[0] === 1
    // Kept before the group moves on: after a crash in between, the message decrypts again and is kept again, where
    // the other way round its keys would be gone and its text with them.
    if (event.kind === 'application') await this.#keep(message, duplicate ? CONTROL : readable(event.plaintext))
    await this.#saveGroup(conversationId, next)
    await this.#setReadSeq(conversationId, seq)
    if (duplicate) return []
    if (event.kind === 'application') {
      const text = new TextDecoder().decode(event.plaintext)
      return [
        {
          kind: 'message',
          conversationId,
          seq,
          sender: event.sender,
          text,
          bytes: event.plaintext,
          sentAt: message.createdAt,
          expiresAt: message.expiresAt,
          ...(copyOf === undefined ? {} : { copyOf }),
        },
      ]
    }
    const { kind: _commit, ...change } = event
    await this.#pruneSent(conversationId, Number(change.epoch))
    const changed: SecureEvent = { kind: 'members-changed', conversationId, seq, ...change }
    if (change.removedSelf && change.rejoined.some((m) => leafKeyOf(m) === leafKeyOf(this.#self))) {
      // Re-added in place of this very leaf (it had asked to be, and re-joined meanwhile): the welcome is waiting.
      // Replaced by another instance of itself, there is none, and this state stays removed.
      const welcomed = await this.#joinByWelcome(conversationId)
      if (welcomed) return [changed, welcomed]
    }
    return [changed]
  }

  /**
   * The seq of the message a copy says it repeats, if it may: an earlier message of the log (read, or found unreadable,
   * before the copy), which the delivery service attributes to the copy's sender too. Otherwise the copy is a message of
   * its own: nobody can make a message of theirs stand for another member's, or for one still to come.
   */
  async #copied(message: Message, marker: string): Promise<number | undefined> {
    const seq = Number(marker.slice(RESEND_OF.length))
    if (!Number.isSafeInteger(seq) || seq < 1 || seq >= message.seq) return undefined
    const [original] = await this.#delivery.listMessages(message.conversationId, seq - 1, 1)
    const same = original?.seq === seq && original.sender.kind === message.sender.kind
    return same && original.sender.id === message.sender.id ? seq : undefined
  }

  /**
   * Encrypts for the group's current epoch and sends; behind another member's commit, it catches up and encrypts
   * again, under the same client message id, so the server keeps the message once whatever the retries. Returns the
   * message as the server accepted it: only then is it sent.
   */
  async #sendNow(
    conversationId: string,
    bytes: Uint8Array,
    clientMessageId: string,
    options: { expiresAt?: Date | undefined; authenticatedData?: string },
  ): Promise<Message> {
    const authenticatedData =
      options.authenticatedData === undefined ? undefined : new TextEncoder().encode(options.authenticatedData)
    for (let attempt = 0; ; attempt++) {
      const { message, group } = await (await this.#usableGroup(conversationId)).encrypt(bytes, authenticatedData)
      await this.#saveGroup(conversationId, group)
      try {
        return await this.#deliver(conversationId, clientMessageId, message, options.expiresAt)
      } catch (error) {
        if (!isEpochConflict(error) || attempt >= MAX_REBASES) throw error
        await this.#catchUp(conversationId)
        await this.#recoverIfBehind(conversationId, error)
      }
    }
  }

  /**
   * `send`'s way: encrypts for the current epoch holding the group, then waits for the acknowledgement without it, so
   * the next message is encrypted meanwhile. Refused for a stale epoch (a commit came first), it catches up and
   * encrypts again under the same client message id, as `#sendNow` does. What the member kept and asks follow.
   */
  async #sendPipelined(
    conversationId: string,
    bytes: Uint8Array,
    clientMessageId: string,
    options: { expiresAt?: Date | undefined },
  ): Promise<Message> {
    let conflict: unknown
    for (let attempt = 0; ; attempt++) {
      const { acknowledged, epoch } = await this.#serialized(conversationId, async () => {
        if (conflict !== undefined) {
          await this.#catchUp(conversationId)
          await this.#recoverIfBehind(conversationId, conflict)
        }
        const { message, group } = await (await this.#usableGroup(conversationId)).encrypt(bytes)
        await this.#saveGroup(conversationId, group)
        // Kept under its client message id while it travels: another instance (tab) reading it back before the
        // acknowledgement finds its text there (`keptText` with the message's client id).
        if (this.#keepTexts) await this.#store.set(sendingKey(conversationId, clientMessageId), readable(bytes))
        const delivering = this.#deliver(conversationId, clientMessageId, message, options.expiresAt)
        // Awaited below, outside the group's turn: a refusal meanwhile is no unhandled rejection.
        delivering.catch(() => undefined)
        return { acknowledged: delivering, epoch: Number(group.epoch) }
      })
      try {
        const sent = await acknowledged.catch(async (error: unknown) => {
          if (this.#keepTexts) await this.#store.delete(sendingKey(conversationId, clientMessageId))
          throw error
        })
        // Kept to send again if a member asks; in the group's turn, as the index of kept texts is read and written.
        await this.#keepSentInTurn(conversationId, { message: sent, bytes, epoch })
        await this.#keep(sent, readable(bytes))
        if (this.#keepTexts) await this.#store.delete(sendingKey(conversationId, clientMessageId))
        if (this.#toAsk.get(conversationId)?.size || this.#toAnswer.get(conversationId)?.size) {
          await this.#serialized(conversationId, () => this.#followUp(conversationId))
        }
        return sent
      } catch (error) {
        if (!isEpochConflict(error) || attempt >= MAX_REBASES) throw error
        conflict = error
      }
    }
  }

  /**
   * Hands an encrypted application message to the delivery service: over the stream when the app gave one that is not
   * closed, else (or when it closes with the message on its way) over HTTP, under the same client message id.
   */
  async #deliver(
    conversationId: string,
    clientMessageId: string,
    message: Uint8Array,
    expiresAt: Date | undefined,
  ): Promise<Message> {
    const stream = this.#stream
    const overHttp = () =>
      this.#overHttpInOrder(conversationId, () =>
        this.#delivery.sendApplicationMessage(conversationId, clientMessageId, message, expiresAt),
      )
    const closed = () => stream?.state === 'closed'
    if (!stream || closed()) return overHttp()
    let sent: Awaited<ReturnType<MessageStream['send']>>
    try {
      sent = await stream.send(conversationId, {
        contentType: MLS_CONTENT_TYPE,
        ciphertext: message,
        clientMessageId,
        ...(expiresAt ? { expiresAt } : {}),
      })
    } catch (error) {
      if (error instanceof StrongroomError || !closed()) throw error
      return overHttp()
    }
    return {
      id: sent.id,
      conversationId,
      seq: sent.seq,
      sender: this.#self,
      clientMessageId,
      contentType: MLS_CONTENT_TYPE,
      ciphertext: bytesToBase64(message),
      createdAt: sent.createdAt,
      expiresAt: sent.expiresAt,
    }
  }

  /**
   * After reading: asks the group for the messages this member could not read, and sends again, once each, its own
   * that others asked for (when it kept their text, and they have not expired). Client message ids derived from the
   * seq make each request and each copy one message in the log, however many members or tabs do it.
   */
  async #followUp(conversationId: string): Promise<SecureEvent[]> {
    const events: SecureEvent[] = []
    for (let seq = take(this.#toAsk, conversationId); seq !== undefined; seq = take(this.#toAsk, conversationId)) {
      await this.#askAgain(conversationId, seq)
    }
    for (
      let seq = take(this.#toAnswer, conversationId);
      seq !== undefined;
      seq = take(this.#toAnswer, conversationId)
    ) {
      const resent = await this.#sendAgain(conversationId, seq)
      if (resent) events.push(resent)
    }
    return this.#emit(events)
  }

  /** Asks the group for the message at `seq`, naming its sender as the delivery service does. */
  async #askAgain(conversationId: string, seq: number): Promise<void> {
    const [original] = await this.#delivery.listMessages(conversationId, seq - 1, 1)
    if (original?.seq !== seq) return
    const request = new TextEncoder().encode(JSON.stringify({ seq, sender: original.sender }))
    const sent = await this.#sendNow(conversationId, request, `resend-request-${seq}`, {
      authenticatedData: RESEND_REQUEST,
    })
    await this.#keep(sent, CONTROL)
  }

  /** Sends again this member's message at `seq`, once, when it kept its text and it has not expired. */
  async #sendAgain(conversationId: string, seq: number): Promise<SecureEvent | undefined> {
    if (await this.#store.get(resentKey(conversationId, seq))) return undefined
    const kept = await this.#store.get(sentKey(conversationId, seq))
    const [original] = await this.#delivery.listMessages(conversationId, seq - 1, 1)
    const mine = original?.sender.kind === this.#self.kind && original.sender.id === this.#self.id
    // Without its text (not kept, or expired) there is nothing to send again: the reader keeps its notice.
    if (!original || original.seq !== seq || !mine || kept?.[0] !== 1) return undefined
    // Only within the epoch it was sent in: the members are those it was sent to. After a commit, a member added
    // since (a new device) could otherwise ask for what was said before it came.
    const group = await this.#usableGroup(conversationId)
    const bytes = base64ToBytes(original.ciphertext)
    if (SecureGroup.epochOf(bytes) !== group.epoch) return undefined
    // The same person's other browser, which read the message, does not answer for it: only the leaf that sent it.
    if (!(await group.sentByThisLeaf(bytes))) return undefined
    const expiresAt = original.expiresAt === null ? undefined : new Date(original.expiresAt)
    const sent = await this.#sendNow(conversationId, kept.subarray(1), `resend-${seq}`, {
      expiresAt,
      authenticatedData: `${RESEND_OF}${seq}`,
    })
    await this.#store.set(resentKey(conversationId, seq), CONTROL, expiresAt ? { expiresAt } : {})
    await this.#keep(sent, kept)
    return { kind: 'resent', conversationId, seq: sent.seq, of: seq }
  }

  /**
   * Brings this member into a group it holds no usable state of, in the most direct way available: a welcome waiting
   * for it, else an external commit in place of its own earlier leaf, else a request to be added. The last covers a
   * member the group never had (a customer's new phone, an agent a conversation was handed to): the archive member
   * adds a member of the conversation, in a commit every member sees.
   */
  async #recover(conversationId: string): Promise<SecureEvent[]> {
    const joined = (await this.#joinByWelcome(conversationId)) ?? (await this.#joinByExternalCommit(conversationId))
    if (joined) return [joined]
    await this.#delivery.requestReadd(conversationId, this.#self.instance)
    return [{ kind: 'rejoin-requested', conversationId }]
  }

  async #deleteWelcome(welcomeId: string): Promise<void> {
    if (this.#spentWelcomes.has(welcomeId)) return
    this.#spentWelcomes.add(welcomeId)
    await this.#delivery.deleteWelcome(welcomeId)
  }

  /** Joins from the latest welcome waiting for this conversation; older ones are spent. */
  async #joinByWelcome(conversationId: string): Promise<SecureEvent | undefined> {
    const welcomes = (await this.#delivery.pendingWelcomes(this.#self.instance))
      .filter((w) => w.conversationId === conversationId)
      .sort((a, b) => b.commitSeq - a.commitSeq)
    let joined: SecureEvent | undefined
    for (const w of welcomes) {
      if (joined) {
        await this.#deleteWelcome(w.id)
        continue
      }
      const group = await this.#joinFromWelcome(w)
      if (group) joined = { kind: 'joined', conversationId, seq: w.commitSeq, epoch: group.epoch, via: 'welcome' }
    }
    return joined
  }

  /**
   * Joins the group a welcome is for and reads on from its commit. A welcome this member cannot open (made for a key
   * package it no longer holds, or one that does not verify) never will be: it is deleted.
   */
  async #joinFromWelcome(w: PendingWelcome): Promise<SecureGroup | undefined> {
    // The welcome names the key package it was made for by reference: load only those this member holds.
    const held = new Map<string, KeyPackageSecrets>()
    const decoded = decodeMlsMessage(w.welcome, 0)?.[0]
    for (const secret of decoded?.wireformat === 'mls_welcome' ? decoded.welcome.secrets : []) {
      const ref = Array.from(secret.newMember, (b) => b.toString(16).padStart(2, '0')).join('')
      const secrets = await this.#loadKeyPackage(ref)
      if (secrets) held.set(ref, secrets)
    }
    let joined: Awaited<ReturnType<typeof SecureGroup.join>>
    try {
      joined = await SecureGroup.join(this.#member, w.welcome, (ref) => held.get(ref))
    } catch (error) {
      if (!(error instanceof SecureGroupError)) throw error
      await this.#deleteWelcome(w.id)
      return undefined
    }
    await this.#saveGroup(w.conversationId, joined.group)
    await this.#setReadSeq(w.conversationId, w.commitSeq)
    await this.#store.delete(`mls/key-package/${joined.usedKeyPackage}`)
    await this.#deleteWelcome(w.id)
    return joined.group
  }

  /**
   * Re-joins by external commit from the GroupInfo the members published, in place of this member's earlier leaf.
   * Another commit getting there first is a conflict like any other: it re-bases on the GroupInfo that one published.
   * Undefined when the group has no GroupInfo this member can use, or the delivery service refuses it.
   */
  async #joinByExternalCommit(conversationId: string): Promise<SecureEvent | undefined> {
    const clientMessageId = randomId()
    for (let attempt = 0; ; attempt++) {
      const groupInfo = await this.#delivery.groupInfo(conversationId)
      if (!groupInfo) return undefined
      let pending: PendingCommit
      try {
        pending = await SecureGroup.joinExternal(this.#member, groupInfo)
      } catch (error) {
        // Not a member the group has a leaf for (never added), or a GroupInfo it cannot use: it asks to be added.
        if (!(error instanceof SecureGroupError)) throw error
        return undefined
      }
      let accepted: Awaited<ReturnType<DeliveryService['submitCommit']>>
      try {
        accepted = await this.#delivery.submitCommit(conversationId, {
          clientMessageId: `${clientMessageId}-${attempt}`,
          commit: pending.commit,
          groupInfo: pending.groupInfo,
        })
      } catch (error) {
        if (isRejoinRefused(error)) return undefined
        if (!isEpochConflict(error) || attempt >= MAX_REBASES) throw error
        continue
      }
      const group = pending.adopt()
      await this.#saveGroup(conversationId, group)
      await this.#setReadSeq(conversationId, accepted.seq)
      return { kind: 'joined', conversationId, seq: accepted.seq, epoch: group.epoch, via: 'external-commit' }
    }
  }

  /** The group to send or commit in, recovered first if this member holds none. */
  async #usableGroup(conversationId: string): Promise<SecureGroup> {
    if (!(await this.#holdsGroup(conversationId))) {
      const events = await this.#emit(await this.#recover(conversationId))
      const last = events.at(-1)?.kind
      if (last === 'rejoin-requested') {
        throw new SecureGroupError('rejoin-pending', 'this member asked to be re-added to the group; try again then')
      }
    }
    return this.#loadGroup(conversationId)
  }

  /**
   * After an epoch conflict and reading everything in the log, this member should be at the group's epoch; still
   * behind, its state missed a commit for good (one it could not apply), so it re-joins.
   */
  async #recoverIfBehind(conversationId: string, conflict: unknown): Promise<void> {
    const current = conflictEpoch(conflict)
    if (!(await this.#holdsGroup(conversationId)) || current === undefined) return
    const group = await this.#loadGroup(conversationId)
    if (group.removed || group.epoch >= current) return
    await this.#forgetGroup(conversationId)
    await this.#emit(await this.#recover(conversationId))
  }

  /**
   * Commits adds and removes for the group's current epoch. If another member's commit got there first, it reads
   * that commit and makes this one again on top of it, with the same key packages (they were not used).
   */
  async #commitWith(conversationId: string, add: Uint8Array[], remove: (m: MemberIdentity) => boolean): Promise<void> {
    const clientMessageId = randomId()
    for (let attempt = 0; ; attempt++) {
      const pending: PendingCommit = await (await this.#usableGroup(conversationId)).commit({ add, remove })
      try {
        await this.#delivery.submitCommit(conversationId, {
          clientMessageId: `${clientMessageId}-${attempt}`,
          commit: pending.commit,
          welcome: pending.welcome,
          groupInfo: pending.groupInfo,
        })
      } catch (error) {
        if (!isEpochConflict(error) || attempt >= MAX_REBASES) throw error
        await this.#catchUp(conversationId)
        await this.#recoverIfBehind(conversationId, error)
        continue
      }
      await this.#saveGroup(conversationId, pending.adopt())
      return
    }
  }

  async #claim(conversationId: string, members: MemberRef[]): Promise<Uint8Array[]> {
    if (members.length === 0) return []
    return this.#delivery.claimKeyPackages(conversationId, members)
  }

  async #loadGroup(conversationId: string): Promise<SecureGroup> {
    const cached = this.#groups.get(conversationId)
    if (cached && !this.#unverified.has(conversationId)) {
      this.#remember(conversationId, cached.group, cached.bytes)
      return cached.group
    }
    const bytes = await this.#store.get(`mls/group/${conversationId}`)
    this.#unverified.delete(conversationId)
    if (!bytes) {
      this.#groups.delete(conversationId)
      throw new SecureGroupError('no-key-package', 'this member is not in the conversation’s group yet')
    }
    // Stored as this instance left it (no other tab moved the group on): the decoded state is that state.
    const group = cached && sameBytes(cached.bytes, bytes) ? cached.group : SecureGroup.restore(this.#member, bytes)
    this.#remember(conversationId, group, bytes)
    return group
  }

  async #holdsGroup(conversationId: string): Promise<boolean> {
    if (this.#groups.has(conversationId) && !this.#unverified.has(conversationId)) return true
    return (await this.#store.get(`mls/group/${conversationId}`)) !== undefined
  }

  async #forgetGroup(conversationId: string): Promise<void> {
    this.#groups.delete(conversationId)
    await this.#store.delete(`mls/group/${conversationId}`)
  }

  async #saveGroup(conversationId: string, group: SecureGroup): Promise<void> {
    const bytes = group.serialize()
    await this.#store.set(`mls/group/${conversationId}`, bytes)
    this.#unverified.delete(conversationId)
    this.#remember(conversationId, group, bytes)
  }

  /**
   * Keeps decoded groups of recent conversations in memory, most recently used last: decoding a stored state costs
   * about a millisecond, more than encrypting a message. The store stays the truth; this only saves decoding it
   * again. With the bytes stored, a store shared with other instances (tabs) is checked by comparing them, not by
   * decoding again.
   */
  #remember(conversationId: string, group: SecureGroup, bytes: Uint8Array): void {
    this.#groups.delete(conversationId)
    this.#groups.set(conversationId, { group, bytes })
    if (this.#groups.size > GROUP_CACHE_SIZE) this.#groups.delete(this.#groups.keys().next().value as string)
  }

  /**
   * Keeps what this member sent, whether or not it keeps texts, so that it can send it again when another member asks
   * (a fork, a lost key): until the message expires, for the latest `SENT_KEPT` messages of the conversation, and only
   * those of the current and the previous epoch (a copy goes only into the epoch the message was sent in). In the
   * member's store, so a remote wipe erases them with the rest.
   */
  async #keepSent(conversationId: string, sent: SentToKeep[]): Promise<void> {
    for (const { message, bytes } of sent) {
      const expiresAt = message.expiresAt === null ? undefined : new Date(message.expiresAt)
      await this.#store.set(sentKey(conversationId, message.seq), readable(bytes), expiresAt ? { expiresAt } : {})
    }
    const latest = Math.max(...sent.map((s) => s.epoch))
    await this.#pruneSent(
      conversationId,
      latest,
      sent.map((s) => [s.message.seq, s.epoch]),
    )
  }

  /**
   * Keeps an acknowledged send (`#keepSent`) in the group's turn, as the index of kept messages is read and written
   * there; the sends acknowledged while that turn waits are kept in the same turn, with one write of the index. A
   * pipelined sender otherwise queued a second turn per message behind its own encryptions.
   */
  #keepSentInTurn(conversationId: string, sent: SentToKeep): Promise<void> {
    const waiting = this.#toKeepSent.get(conversationId)
    if (waiting) {
      waiting.sent.push(sent)
      return waiting.kept
    }
    const batch = [sent]
    const kept = this.#serialized(conversationId, () => {
      this.#toKeepSent.delete(conversationId)
      return this.#keepSent(conversationId, batch)
    })
    this.#toKeepSent.set(conversationId, { sent: batch, kept })
    return kept
  }

  /** Forgets the messages kept to send again that can no longer be: from before the previous epoch, or too many. */
  async #pruneSent(conversationId: string, epoch: number, added: [seq: number, epoch: number][] = []): Promise<void> {
    const stored = await this.#store.get(sentIndexKey(conversationId))
    if (!stored && added.length === 0) return
    const index: [number, number][] = [
      ...(stored ? (JSON.parse(new TextDecoder().decode(stored)) as [number, number][]) : []),
      ...added,
    ]
    const keep = index.filter(([, sentIn]) => sentIn >= epoch - 1).slice(-SENT_KEPT)
    if (keep.length === index.length && added.length === 0) return
    const kept = new Set(keep.map(([seq]) => seq))
    for (const [seq] of index) if (!kept.has(seq)) await this.#store.delete(sentKey(conversationId, seq))
    if (keep.length === 0) await this.#store.delete(sentIndexKey(conversationId))
    else await this.#store.set(sentIndexKey(conversationId), new TextEncoder().encode(JSON.stringify(keep)))
  }

  /** Keeps what a message said, until it expires, when the member keeps texts. */
  async #keep(message: Message, kept: Uint8Array): Promise<void> {
    if (!this.#keepTexts) return
    const expiresAt = message.expiresAt === null ? undefined : new Date(message.expiresAt)
    await this.#store.set(textKey(message.conversationId, message.seq), kept, expiresAt ? { expiresAt } : {})
  }

  async #readSeq(conversationId: string): Promise<number> {
    const bytes = await this.#store.get(`mls/read/${conversationId}`)
    return bytes ? Number(new TextDecoder().decode(bytes)) : 0
  }

  async #setReadSeq(conversationId: string, seq: number): Promise<void> {
    await this.#store.set(`mls/read/${conversationId}`, new TextEncoder().encode(String(seq)))
  }

  async #keepKeyPackage(kp: KeyPackageSecrets): Promise<void> {
    const stored: StoredKeyPackage = {
      message: bytesToBase64(kp.message),
      initPrivateKey: bytesToBase64(kp.privatePackage.initPrivateKey),
      hpkePrivateKey: bytesToBase64(kp.privatePackage.hpkePrivateKey),
    }
    await this.#store.set(`mls/key-package/${kp.ref}`, new TextEncoder().encode(JSON.stringify(stored)))
  }

  async #loadKeyPackage(ref: string): Promise<KeyPackageSecrets | undefined> {
    const bytes = await this.#store.get(`mls/key-package/${ref}`)
    if (!bytes) return undefined
    const stored = JSON.parse(new TextDecoder().decode(bytes)) as StoredKeyPackage
    const message = base64ToBytes(stored.message)
    const decoded = decodeMlsMessage(message, 0)?.[0]
    if (decoded?.wireformat !== 'mls_key_package') return undefined
    return {
      message,
      ref,
      publicPackage: decoded.keyPackage,
      privatePackage: {
        initPrivateKey: base64ToBytes(stored.initPrivateKey),
        hpkePrivateKey: base64ToBytes(stored.hpkePrivateKey),
        signaturePrivateKey: this.#member.signatureKey.signKey,
      },
    }
  }

  /**
   * Runs operations on one conversation one after another: each starts from the state the previous one stored. With
   * a store that other instances of this member share (the tabs of a browser), one at a time across all of them, and
   * from the stored state, not the one decoded here before: another instance may have moved the group on since.
   */
  #serialized<T>(conversationId: string, operation: () => Promise<T>): Promise<T> {
    if (!this.#store.exclusive) return this.#queues(conversationId, operation)
    const shared = this.#store as Required<Pick<SecureStore, 'exclusive'>>
    return this.#queues(conversationId, () =>
      shared.exclusive(`mls/conversation/${conversationId}`, () => {
        this.#unverified.add(conversationId)
        return operation()
      }),
    )
  }
}

/** A send the server acknowledged, with what it said and the epoch it was encrypted in. */
interface SentToKeep {
  message: Message
  bytes: Uint8Array
  epoch: number
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** Adds to a per-conversation set, making it when needed. */
function queued(sets: Map<string, Set<number>>, conversationId: string): Set<number> {
  const set = sets.get(conversationId) ?? new Set<number>()
  sets.set(conversationId, set)
  return set
}

/** Takes the lowest seq from a per-conversation set. */
function take(sets: Map<string, Set<number>>, conversationId: string): number | undefined {
  const set = sets.get(conversationId)
  if (!set || set.size === 0) return undefined
  const first = Math.min(...set)
  set.delete(first)
  return first
}

/** A request's content: the seq of the message asked for and its sender, as the delivery service named them. */
function resendRequestOf(plaintext: Uint8Array): { seq: number; sender: MemberIdentity } | undefined {
  try {
    const parsed = JSON.parse(new TextDecoder().decode(plaintext)) as {
      seq?: unknown
      sender?: { kind?: unknown; id?: unknown }
    }
    const { seq, sender } = parsed
    if (!Number.isSafeInteger(seq) || typeof sender?.kind !== 'string' || typeof sender.id !== 'string')
      return undefined
    return { seq: seq as number, sender: { kind: sender.kind as MemberIdentity['kind'], id: sender.id } }
  } catch {
    return undefined
  }
}

/** An MLS PrivateMessage (application data, or anything encrypted) rather than a commit, by its wire format field. */
function isPrivateMessage(bytes: Uint8Array): boolean {
  // MLSMessage: version (uint16) then wire_format (uint16); 2 is mls_private_message.
  return bytes.length > 4 && bytes[2] === 0 && bytes[3] === 2
}
