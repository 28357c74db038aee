import { decodeJwt } from 'jose'
import {
  type CiphersuiteName,
  type CryptoProvider,
  decodeMlsMessage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
} from 'ts-mls'
import { StrongroomClient } from '../client.ts'
import { base64ToBytes, bytesToBase64, randomId } from '../encoding.ts'
import { StrongroomError } from '../errors.ts'
import type { Message } from '../protocol.ts'
import {
  type DeliveryService,
  httpDeliveryService,
  isEpochConflict,
  type MemberRef,
  MLS_CONTENT_TYPE,
} from './delivery-service.ts'
import { secureGroupClientConfig } from './group-config.ts'
import {
  credentialAuthorityService,
  type MemberCredentialClaims,
  type MemberIdentity,
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
import type { SecureStore } from './secure-store.ts'

const DEFAULT_SUITE: CiphersuiteName = 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'
const KEY_PACKAGE_BATCH = 20
const MAX_REBASES = 5
const GROUP_CACHE_SIZE = 500

/** What reading a secure conversation produced, in log order. */
export type SecureEvent =
  | {
      kind: 'message'
      conversationId: string
      seq: number
      sender: MemberIdentity
      text: string
      bytes: Uint8Array
      /** When the sender made it disappear: keep it no longer than this (ISO 8601), or null. */
      expiresAt: string | null
    }
  | {
      /** A message in the log that this member could not read (tampered, from a removed sender, not for it). */
      kind: 'unreadable'
      conversationId: string
      seq: number
      reason: SecureGroupErrorCode
    }
  | {
      kind: 'members-changed'
      conversationId: string
      seq: number
      epoch: bigint
      added: MemberIdentity[]
      removed: MemberIdentity[]
      /** This member was removed: it reads nothing more in this conversation. */
      removedSelf: boolean
    }

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
 * @example
 * const secure = await SecureMessaging.open(client, { provider: nodeCryptoProvider, store })
 * await secure.createGroup(conversationId, [{ kind: 'device', id: phoneId }, { kind: 'archive', id: 'archive' }])
 * await secure.send(conversationId, 'Your card is blocked; a new one is on its way.')
 * client.stream({ onMessage: async (m) => console.log(await secure.receive(m)) })
 */
export class SecureMessaging {
  readonly #delivery: DeliveryService
  readonly #store: SecureStore
  readonly #member: LocalMember
  readonly #self: MemberIdentity
  readonly #queues = new Map<string, Promise<unknown>>()
  readonly #groups = new Map<string, SecureGroup>()
  readonly #onEvent: ((event: SecureEvent) => void | Promise<void>) | undefined

  private constructor(
    delivery: DeliveryService,
    store: SecureStore,
    member: LocalMember,
    self: MemberIdentity,
    onEvent: ((event: SecureEvent) => void | Promise<void>) | undefined,
  ) {
    this.#delivery = delivery
    this.#onEvent = onEvent
    this.#store = store
    this.#member = member
    this.#self = self
  }

  /**
   * Opens the member's MLS identity from the store, or makes one: a signature key pair and a credential for it from
   * the server's credential authority. Then tops up the member's key packages in the directory.
   */
  static async open(
    service: StrongroomClient | DeliveryService,
    options: {
      provider: CryptoProvider
      store: SecureStore
      suite?: CiphersuiteName
      /**
       * Called with every event in log order, including those read while catching up before a send or a commit
       * (which `send` does not return). A promise it returns is awaited before the next message is read.
       */
      onEvent?: (event: SecureEvent) => void | Promise<void>
    },
  ): Promise<SecureMessaging> {
    const delivery = service instanceof StrongroomClient ? httpDeliveryService(service) : service
    const suiteName = options.suite ?? DEFAULT_SUITE
    const suite = await getCiphersuiteImpl(getCiphersuiteFromName(suiteName), options.provider)
    const store = options.store
    let signKey = await store.get('mls/signature-key')
    let publicKey = await store.get('mls/signature-public-key')
    if (!signKey || !publicKey) {
      const pair = await suite.signature.keygen()
      signKey = pair.signKey
      publicKey = pair.publicKey
      await store.set('mls/signature-key', signKey)
      await store.set('mls/signature-public-key', publicKey)
    }
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
    const [kind, id] = claims.sub.split(':', 2) as [MemberIdentity['kind'], string]
    const messaging = new SecureMessaging(delivery, store, member, { kind, id }, options.onEvent)
    await messaging.replenishKeyPackages()
    return messaging
  }

  /** Who this member is, as the other members see it. */
  get self(): MemberIdentity {
    return this.#self
  }

  /** Uploads key packages when the directory says the stock is low, and a last-resort one if none is stored. */
  async replenishKeyPackages(): Promise<void> {
    const stock = await this.#delivery.keyPackageStock()
    if (!stock.low && stock.lastResort) return
    const fresh = stock.low ? await generateKeyPackages(this.#member, KEY_PACKAGE_BATCH) : []
    const lastResort = stock.lastResort ? undefined : (await generateKeyPackages(this.#member, 1))[0]
    for (const kp of [...fresh, ...(lastResort ? [lastResort] : [])]) await this.#keepKeyPackage(kp)
    await this.#delivery.uploadKeyPackages(
      fresh.map((kp) => kp.message),
      lastResort?.message,
    )
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
      await this.#delivery.registerGroup(conversationId, groupId, this.#member.suite.name)
      await this.#saveGroup(conversationId, group)
      await this.#commitWith(conversationId, add, () => false)
    })
  }

  /** Adds members (a new device of the customer, another agent) to the conversation's group. */
  addMembers(conversationId: string, members: MemberRef[]): Promise<void> {
    return this.#serialized(conversationId, async () => {
      await this.#commitWith(conversationId, await this.#claim(conversationId, members), () => false)
    })
  }

  /** Removes members from the group: from the next epoch on they can decrypt nothing. */
  removeMembers(conversationId: string, members: MemberRef[]): Promise<void> {
    const gone = (m: MemberIdentity) => members.some((r) => r.kind === m.kind && r.id === m.id)
    return this.#serialized(conversationId, () => this.#commitWith(conversationId, [], gone))
  }

  /** Whether this member holds the conversation's group (and has not been removed from it). */
  async isMember(conversationId: string): Promise<boolean> {
    if (!this.#groups.has(conversationId) && !(await this.#store.get(`mls/group/${conversationId}`))) return false
    return !(await this.#loadGroup(conversationId)).removed
  }

  /** The group's members as this member verified them. */
  async members(conversationId: string): Promise<MemberIdentity[]> {
    return (await this.#loadGroup(conversationId)).members().map((m) => m.identity)
  }

  /**
   * Encrypts and sends text (or bytes) to the conversation; behind another member's commit, it catches up first. With
   * `expiresAt`, the message disappears then, from the members' screens and from the server.
   */
  send(conversationId: string, content: string | Uint8Array, options: { expiresAt?: Date } = {}): Promise<Message> {
    const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content
    const clientMessageId = randomId()
    return this.#serialized(conversationId, async () => {
      for (let attempt = 0; ; attempt++) {
        const { message, group } = await (await this.#loadGroup(conversationId)).encrypt(bytes)
        await this.#saveGroup(conversationId, group)
        try {
          return await this.#delivery.sendApplicationMessage(
            conversationId,
            clientMessageId,
            message,
            options.expiresAt,
          )
        } catch (error) {
          if (!isEpochConflict(error) || attempt >= MAX_REBASES) throw error
          await this.#catchUp(conversationId)
        }
      }
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
      if (message.seq > read + 1) return this.#catchUp(message.conversationId)
      return this.#apply(message)
    })
  }

  /** Reads everything new in a conversation from the server. */
  sync(conversationId: string): Promise<SecureEvent[]> {
    return this.#serialized(conversationId, () => this.#catchUp(conversationId))
  }

  /** Joins every group this member was added to while away; returns the conversations joined. */
  async acceptWelcomes(): Promise<string[]> {
    const welcomes = await this.#delivery.pendingWelcomes()
    const joined: string[] = []
    for (const w of welcomes) {
      await this.#serialized(w.conversationId, async () => {
        // Two readers may fetch the same welcome; the group is joined once.
        if (await this.isMember(w.conversationId)) {
          await this.#delivery.deleteWelcome(w.id).catch(() => undefined)
          return
        }
        const welcome = w.welcome
        // The welcome names the key package it was made for by reference: load only those this member holds.
        const held = new Map<string, KeyPackageSecrets>()
        const decoded = decodeMlsMessage(welcome, 0)?.[0]
        for (const secret of decoded?.wireformat === 'mls_welcome' ? decoded.welcome.secrets : []) {
          const ref = Array.from(secret.newMember, (b) => b.toString(16).padStart(2, '0')).join('')
          const secrets = await this.#loadKeyPackage(ref)
          if (secrets) held.set(ref, secrets)
        }
        const { group, usedKeyPackage } = await SecureGroup.join(this.#member, welcome, (ref) => held.get(ref))
        await this.#saveGroup(w.conversationId, group)
        await this.#setReadSeq(w.conversationId, w.commitSeq)
        await this.#store.delete(`mls/key-package/${usedKeyPackage}`)
        await this.#delivery.deleteWelcome(w.id)
        joined.push(w.conversationId)
      })
    }
    if (joined.length > 0) await this.replenishKeyPackages()
    return joined
  }

  async #catchUp(conversationId: string): Promise<SecureEvent[]> {
    const events: SecureEvent[] = []
    for (;;) {
      const after = await this.#readSeq(conversationId)
      const batch = await this.#delivery.listMessages(conversationId, after, 200)
      for (const message of batch) events.push(...(await this.#apply(message)))
      if (batch.length < 200) return events
    }
  }

  async #apply(message: Message): Promise<SecureEvent[]> {
    const events = await this.#read(message)
    for (const event of events) await this.#onEvent?.(event)
    return events
  }

  async #read(message: Message): Promise<SecureEvent[]> {
    const { conversationId, seq } = message
    const mine = message.sender.kind === this.#self.kind && message.sender.id === this.#self.id
    // A member cannot decrypt its own application messages, and its own commits were applied when accepted.
    if (mine || message.contentType !== MLS_CONTENT_TYPE) {
      await this.#setReadSeq(conversationId, seq)
      return []
    }
    const group = await this.#loadGroup(conversationId)
    let processed: Awaited<ReturnType<SecureGroup['process']>>
    try {
      processed = await group.process(base64ToBytes(message.ciphertext))
    } catch (error) {
      if (!(error instanceof SecureGroupError)) throw error
      // One bad message must not block the conversation: it is reported and passed over, the group unchanged.
      await this.#setReadSeq(conversationId, seq)
      return [{ kind: 'unreadable', conversationId, seq, reason: error.code }]
    }
    const { group: next, event } = processed
    await this.#saveGroup(conversationId, next)
    await this.#setReadSeq(conversationId, seq)
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
          expiresAt: message.expiresAt,
        },
      ]
    }
    const { kind: _commit, ...change } = event
    return [{ kind: 'members-changed', conversationId, seq, ...change }]
  }

  /**
   * Commits adds and removes for the group's current epoch. If another member's commit got there first, it reads
   * that commit and makes this one again on top of it, with the same key packages (they were not used).
   */
  async #commitWith(conversationId: string, add: Uint8Array[], remove: (m: MemberIdentity) => boolean): Promise<void> {
    const clientMessageId = randomId()
    for (let attempt = 0; ; attempt++) {
      const pending: PendingCommit = await (await this.#loadGroup(conversationId)).commit({ add, remove })
      try {
        await this.#delivery.submitCommit(conversationId, {
          clientMessageId: `${clientMessageId}-${attempt}`,
          commit: pending.commit,
          welcome: pending.welcome,
        })
      } catch (error) {
        if (!isEpochConflict(error) || attempt >= MAX_REBASES) throw error
        await this.#catchUp(conversationId)
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
    if (cached) {
      // Most recently used last, so the oldest is the first to go.
      this.#groups.delete(conversationId)
      this.#groups.set(conversationId, cached)
      return cached
    }
    const bytes = await this.#store.get(`mls/group/${conversationId}`)
    if (!bytes) throw new SecureGroupError('no-key-package', 'this member is not in the conversation’s group yet')
    const group = SecureGroup.restore(this.#member, bytes)
    this.#remember(conversationId, group)
    return group
  }

  async #saveGroup(conversationId: string, group: SecureGroup): Promise<void> {
    await this.#store.set(`mls/group/${conversationId}`, group.serialize())
    this.#remember(conversationId, group)
  }

  /**
   * Keeps decoded groups of recent conversations in memory: decoding a stored state costs about a millisecond, more
   * than encrypting a message. The store stays the truth; this only saves decoding it again.
   */
  #remember(conversationId: string, group: SecureGroup): void {
    this.#groups.delete(conversationId)
    this.#groups.set(conversationId, group)
    if (this.#groups.size > GROUP_CACHE_SIZE) this.#groups.delete(this.#groups.keys().next().value as string)
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

  /** Runs operations on one conversation one after another: each starts from the state the previous one stored. */
  #serialized<T>(conversationId: string, operation: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(conversationId) ?? Promise.resolve()
    const result = previous.then(operation, operation)
    const settled = result.catch(() => undefined)
    this.#queues.set(conversationId, settled)
    void settled.then(() => {
      if (this.#queues.get(conversationId) === settled) this.#queues.delete(conversationId)
    })
    return result
  }
}
