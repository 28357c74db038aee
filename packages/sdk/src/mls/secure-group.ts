import {
  type CiphersuiteImpl,
  type ClientConfig,
  type ClientState,
  type Credential,
  createApplicationMessage,
  createCommit,
  createGroup,
  decodeGroupState,
  decodeMlsMessage,
  defaultCapabilities,
  emptyPskIndex,
  encodeGroupState,
  encodeMlsMessage,
  generateKeyPackageWithKey,
  joinGroup,
  type KeyPackage,
  type LeafNode,
  type MLSMessage,
  type PrivateKeyPackage,
  type PrivateMessage,
  type Proposal,
  processMessage,
  zeroOutUint8Array,
} from 'ts-mls'
import { makeKeyPackageRef } from 'ts-mls/keyPackage.js'
import { decryptSenderData } from 'ts-mls/privateMessage.js'
import { type MemberIdentity, memberOfCredential } from './member-credential.ts'

/** Why a group operation failed, in terms a caller can act on. */
export type SecureGroupErrorCode =
  /** The message is for a later epoch: apply the commits before it first. */
  | 'future-epoch'
  /** The message is for an epoch whose keys are gone (too old). */
  | 'stale-epoch'
  /** This member was removed from the group and can read nothing more. */
  | 'removed'
  /** The message belongs to another group. */
  | 'wrong-group'
  /** The message does not decode, decrypt or verify. */
  | 'invalid-message'
  /** No stored key package matches the welcome. */
  | 'no-key-package'

export class SecureGroupError extends Error {
  readonly code: SecureGroupErrorCode
  constructor(code: SecureGroupErrorCode, message: string) {
    super(message)
    this.name = 'SecureGroupError'
    this.code = code
  }
}

/** The local member's long-term MLS identity: one signature key, bound to it a credential signed by the authority. */
export interface LocalMember {
  suite: CiphersuiteImpl
  config: ClientConfig
  credential: Credential
  signatureKey: { signKey: Uint8Array; publicKey: Uint8Array }
}

/** A key package ready to upload, and the private half the member keeps until a welcome uses it. */
export interface KeyPackageSecrets {
  /** The key package as an MLS message (wire format `mls_key_package`), to upload. */
  message: Uint8Array
  /** Hex KeyPackageRef, by which a welcome names the package it was made for. */
  ref: string
  publicPackage: KeyPackage
  privatePackage: PrivateKeyPackage
}

/** A group member as every member sees it: leaf position and verified identity. */
export interface GroupMember {
  leafIndex: number
  identity: MemberIdentity
}

/** What processing one message did. */
export type GroupEvent =
  | { kind: 'application'; sender: MemberIdentity; plaintext: Uint8Array }
  | { kind: 'commit'; epoch: bigint; added: MemberIdentity[]; removed: MemberIdentity[]; removedSelf: boolean }

/** A commit made but not yet applied: it takes effect when the delivery service accepts it for `fromEpoch`. */
export interface PendingCommit {
  fromEpoch: bigint
  /** The commit as an MLS message, for every member. */
  commit: Uint8Array
  /** The welcome for the members it adds, if any. */
  welcome?: Uint8Array
  /**
   * The group as it is once the commit is accepted. Call it only then: it also erases the old epoch's secrets the
   * commit used up, which the current group still needs if the commit is refused.
   */
  adopt(): SecureGroup
}

const toHex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')

function encodeMessage(message: MLSMessage): Uint8Array {
  return encodeMlsMessage(message)
}

function decodeMessage(bytes: Uint8Array): MLSMessage {
  let decoded: ReturnType<typeof decodeMlsMessage>
  try {
    decoded = decodeMlsMessage(bytes, 0)
  } catch {
    decoded = undefined
  }
  if (!decoded || decoded[1] !== bytes.length) throw new SecureGroupError('invalid-message', 'not an MLS message')
  return decoded[0]
}

/** Makes key packages for upload with the member's long-term signature key. */
export async function generateKeyPackages(member: LocalMember, count: number): Promise<KeyPackageSecrets[]> {
  const packages: KeyPackageSecrets[] = []
  for (let i = 0; i < count; i++) {
    const { publicPackage, privatePackage } = await generateKeyPackageWithKey(
      member.credential,
      defaultCapabilities(),
      { notBefore: 0n, notAfter: BigInt(Math.floor(Date.now() / 1000) + 90 * 24 * 3600) },
      [],
      member.signatureKey,
      member.suite,
    )
    packages.push({
      message: encodeMessage({ version: 'mls10', wireformat: 'mls_key_package', keyPackage: publicPackage }),
      ref: toHex(await makeKeyPackageRef(publicPackage, member.suite.hash)),
      publicPackage,
      privatePackage,
    })
  }
  return packages
}

function identityOf(leaf: LeafNode): MemberIdentity {
  return memberOfCredential(leaf.credential)
}

const sameMember = (a: MemberIdentity, b: MemberIdentity) => a.kind === b.kind && a.id === b.id

/**
 * One secure conversation's MLS group, as one member holds it. Immutable: every operation that advances the group
 * returns the next `SecureGroup`, so the caller can persist the new state before anything leaves the device and can
 * drop a commit the delivery service refused without undoing anything.
 *
 * @example
 * const group = await SecureGroup.create(member, groupId)
 * const pending = await group.commit({ add: [bobKeyPackage, archiveKeyPackage] })
 * // send pending.commit and pending.welcome; once accepted:
 * let current = pending.adopt()
 * const { message, group: after } = await current.encrypt(new TextEncoder().encode('hello'))
 */
export class SecureGroup {
  readonly #member: LocalMember
  readonly #state: ClientState

  private constructor(member: LocalMember, state: ClientState) {
    this.#member = member
    this.#state = state
  }

  /** A new group with the local member alone, at epoch 0. */
  static async create(member: LocalMember, groupId: Uint8Array): Promise<SecureGroup> {
    const [own] = await generateKeyPackages(member, 1)
    if (!own) throw new Error('no key package generated')
    const state = await createGroup(groupId, own.publicPackage, own.privatePackage, [], member.suite, member.config)
    return new SecureGroup(member, state)
  }

  /** Joins from a welcome made for one of the member's key packages (found by reference). */
  static async join(
    member: LocalMember,
    welcome: Uint8Array,
    keyPackages: (ref: string) => KeyPackageSecrets | undefined,
  ): Promise<{ group: SecureGroup; usedKeyPackage: string }> {
    const decoded = decodeMessage(welcome)
    if (decoded.wireformat !== 'mls_welcome') throw new SecureGroupError('invalid-message', 'not an MLS welcome')
    for (const secret of decoded.welcome.secrets) {
      const ref = toHex(secret.newMember)
      const own = keyPackages(ref)
      if (!own) continue
      try {
        const state = await joinGroup(
          decoded.welcome,
          own.publicPackage,
          own.privatePackage,
          emptyPskIndex,
          member.suite,
          undefined,
          undefined,
          member.config,
        )
        return { group: new SecureGroup(member, state), usedKeyPackage: ref }
      } catch {
        throw new SecureGroupError('invalid-message', 'the welcome does not decrypt or verify')
      }
    }
    throw new SecureGroupError('no-key-package', 'the welcome is for none of this member’s key packages')
  }

  /** A group from `serialize()`'s bytes. The bytes hold the member's signature key: store them encrypted. */
  static restore(member: LocalMember, bytes: Uint8Array): SecureGroup {
    const decoded = decodeGroupState(bytes, 0)
    if (!decoded) throw new SecureGroupError('invalid-message', 'not a stored group state')
    return new SecureGroup(member, { ...decoded[0], clientConfig: member.config })
  }

  get groupId(): Uint8Array {
    return this.#state.groupContext.groupId
  }

  get epoch(): bigint {
    return this.#state.groupContext.epoch
  }

  /** Whether a commit has removed the local member. */
  get removed(): boolean {
    return this.#state.groupActiveState.kind === 'removedFromGroup'
  }

  /** The current members with their verified identities, the same list on every member. */
  members(): GroupMember[] {
    const members: GroupMember[] = []
    this.#state.ratchetTree.forEach((node, nodeIndex) => {
      if (node?.nodeType === 'leaf') members.push({ leafIndex: nodeIndex / 2, identity: identityOf(node.leaf) })
    })
    return members
  }

  serialize(): Uint8Array {
    return encodeGroupState(this.#state)
  }

  /**
   * A commit that adds members (by their key-package messages) and removes others. It is not applied here: the
   * caller sends it to the delivery service and adopts `next` only when it is accepted for `fromEpoch`.
   */
  async commit(changes: { add?: Uint8Array[]; remove?: (member: MemberIdentity) => boolean }): Promise<PendingCommit> {
    this.#requireActive()
    const proposals: Proposal[] = []
    for (const bytes of changes.add ?? []) {
      const decoded = decodeMessage(bytes)
      if (decoded.wireformat !== 'mls_key_package') throw new SecureGroupError('invalid-message', 'not a key package')
      proposals.push({ proposalType: 'add', add: { keyPackage: decoded.keyPackage } })
    }
    if (changes.remove) {
      const self = this.#state.privatePath.leafIndex
      for (const member of this.members()) {
        if (member.leafIndex !== self && changes.remove(member.identity)) {
          proposals.push({ proposalType: 'remove', remove: { removed: member.leafIndex } })
        }
      }
    }
    const result = await createCommit(
      { state: this.#state, cipherSuite: this.#member.suite },
      // Commits go as PublicMessage so the delivery service can check their group, epoch and type; the welcome
      // carries the ratchet tree so a joiner needs nothing else.
      { extraProposals: proposals, wireAsPublicMessage: true, ratchetTreeExtension: true },
    )
    const next = new SecureGroup(this.#member, result.newState)
    const pending: PendingCommit = {
      fromEpoch: this.epoch,
      commit: encodeMessage(result.commit),
      adopt: () => {
        result.consumed.forEach(zeroOutUint8Array)
        return next
      },
    }
    if (result.welcome) {
      pending.welcome = encodeMessage({ version: 'mls10', wireformat: 'mls_welcome', welcome: result.welcome })
    }
    return pending
  }

  /** Encrypts application data for the group; persist `group` before `message` leaves the device. */
  async encrypt(plaintext: Uint8Array): Promise<{ message: Uint8Array; group: SecureGroup }> {
    this.#requireActive()
    const result = await createApplicationMessage(this.#state, plaintext, this.#member.suite)
    result.consumed.forEach(zeroOutUint8Array)
    return {
      message: encodeMessage({
        version: 'mls10',
        wireformat: 'mls_private_message',
        privateMessage: result.privateMessage,
      }),
      group: new SecureGroup(this.#member, result.newState),
    }
  }

  /**
   * Processes one message from the delivery service, in the order it delivered them: an application message gives
   * its plaintext and verified sender, a commit the next epoch and who it added and removed.
   */
  async process(bytes: Uint8Array): Promise<{ group: SecureGroup; event: GroupEvent }> {
    const message = decodeMessage(bytes)
    if (message.wireformat !== 'mls_private_message' && message.wireformat !== 'mls_public_message') {
      throw new SecureGroupError('invalid-message', 'not a group message')
    }
    const framed = message.wireformat === 'mls_private_message' ? message.privateMessage : message.publicMessage.content
    if (toHex(framed.groupId) !== toHex(this.groupId)) {
      throw new SecureGroupError('wrong-group', 'the message belongs to another group')
    }
    // ts-mls reports these as a generic decryption failure; checking first gives the caller a reason it can act on.
    if (this.removed) throw new SecureGroupError('removed', 'this member has been removed from the group')
    if (framed.epoch > this.epoch) throw new SecureGroupError('future-epoch', 'the message is for a later epoch')
    if (framed.epoch < this.epoch - BigInt(this.#member.config.keyRetentionConfig.retainKeysForEpochs)) {
      throw new SecureGroupError('stale-epoch', 'the message is for an epoch whose keys are gone')
    }
    // Only a commit changes the member list, and only a commit arrives as a PublicMessage here.
    const before = message.wireformat === 'mls_public_message' ? this.members() : []
    const sender =
      message.wireformat === 'mls_private_message' ? await this.#senderOf(message.privateMessage) : undefined
    let result: Awaited<ReturnType<typeof processMessage>>
    try {
      result = await processMessage(message, this.#state, emptyPskIndex, () => 'accept', this.#member.suite)
    } catch {
      throw new SecureGroupError('invalid-message', 'the message does not decrypt or verify')
    }
    result.consumed.forEach(zeroOutUint8Array)
    const group = new SecureGroup(this.#member, result.newState)
    if (result.kind === 'applicationMessage') {
      if (!sender) throw new SecureGroupError('invalid-message', 'the sender is not a member')
      return { group, event: { kind: 'application', sender, plaintext: result.message } }
    }
    const after = group.removed ? [] : group.members()
    const added = after.filter((m) => !before.some((b) => sameMember(b.identity, m.identity))).map((m) => m.identity)
    const removed = before.filter((b) => !after.some((m) => sameMember(b.identity, m.identity))).map((b) => b.identity)
    return { group, event: { kind: 'commit', epoch: group.epoch, added, removed, removedSelf: group.removed } }
  }

  /**
   * The sender of a private message, from its encrypted sender data and the tree of the message's epoch. ts-mls does
   * not return it; processing then verifies the signature with this very leaf's key, so the identity is authenticated.
   */
  async #senderOf(message: PrivateMessage): Promise<MemberIdentity | undefined> {
    const epochData = message.epoch === this.epoch ? undefined : this.#state.historicalReceiverData.get(message.epoch)
    const senderDataSecret = epochData ? epochData.senderDataSecret : this.#state.keySchedule.senderDataSecret
    const tree = epochData ? epochData.ratchetTree : this.#state.ratchetTree
    let senderData: Awaited<ReturnType<typeof decryptSenderData>>
    try {
      senderData = await decryptSenderData(message, senderDataSecret, this.#member.suite)
    } catch {
      return undefined
    }
    const node = senderData ? tree[senderData.leafIndex * 2] : undefined
    return node?.nodeType === 'leaf' ? identityOf(node.leaf) : undefined
  }

  #requireActive(): void {
    if (this.removed) throw new SecureGroupError('removed', 'this member has been removed from the group')
  }
}
