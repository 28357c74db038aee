import {
  type CiphersuiteImpl,
  type ClientConfig,
  type ClientState,
  type Credential,
  createApplicationMessage,
  createCommit,
  createGroup,
  createGroupInfoWithExternalPubAndRatchetTree,
  decodeGroupState,
  decodeMlsMessage,
  defaultCapabilities,
  emptyPskIndex,
  encodeMlsMessage,
  generateKeyPackageWithKey,
  joinGroup,
  joinGroupExternal,
  type KeyPackage,
  type LeafNode,
  type MLSMessage,
  type PrivateKeyPackage,
  type PrivateMessage,
  type Proposal,
  type PublicMessage,
  processMessage,
} from 'ts-mls'
import type { BufferEncoder } from 'ts-mls/codec/tlsEncoder.js'
import { bigintMapEncoder, varLenDataEncoder } from 'ts-mls/codec/variableLength.js'
import { epochReceiverDataEncoder } from 'ts-mls/epochReceiverData.js'
import type { FramedContentCommit } from 'ts-mls/framedContent.js'
import { groupActiveStateEncoder } from 'ts-mls/groupActiveState.js'
import { groupContextEncoder } from 'ts-mls/groupContext.js'
import { ratchetTreeFromExtension } from 'ts-mls/groupInfo.js'
import { makeKeyPackageRef } from 'ts-mls/keyPackage.js'
import { keyScheduleEncoder } from 'ts-mls/keySchedule.js'
import { unprotectPublicMessage } from 'ts-mls/messageProtectionPublic.js'
import { privateKeyPathEncoder } from 'ts-mls/privateKeyPath.js'
import { decryptSenderData } from 'ts-mls/privateMessage.js'
import { ratchetTreeEncoder } from 'ts-mls/ratchetTree.js'
import { secretTreeEncoder } from 'ts-mls/secretTree.js'
import { unappliedProposalsEncoder } from 'ts-mls/unappliedProposals.js'
import { keyPackageLifetime } from './group-config.ts'
import { leafKeyOf, type MemberIdentity, memberKeyOf, memberOfCredential } from './member-credential.ts'

/**
 * Overwrites a used secret (a ratchet secret, a message key) with zeros. ts-mls's own `zeroOutUint8Array` first fills
 * the buffer from WebCrypto's random generator, which cost about 30 us a message here and adds nothing: the bytes end
 * up zero either way.
 */
function wipe(secret: Uint8Array): void {
  secret.fill(0)
}

/**
 * ts-mls's encoding of a group state, made faster for a state that moved on by one message: the encoding is the
 * concatenation of its fields' encodings, and a message changes only the secret tree (ts-mls makes a new state object
 * holding the other fields as they were). So each field's encoding is kept with the field's object and made again
 * only for a new object. The secret tree, the key schedule and the private path keys, whose secrets a message or a
 * commit wipes in place, are always encoded afresh; every other kept encoding lives only as long as its field's object
 * (a WeakMap). Serializing after every message was the SDK's largest cost after the cryptography itself. The same bytes
 * as `encodeGroupState` (secure-group.test.ts compares them).
 */
const fieldEncodings = new WeakMap<object, Uint8Array>()

type FieldEncoder = BufferEncoder<never>
/** ts-mls's `groupStateEncoder`, field by field in its order; whether a field's encoding may be kept with it. */
const STATE_FIELDS: [field: keyof ClientState, encoder: FieldEncoder, keep: boolean][] = [
  ['groupContext', groupContextEncoder, true],
  ['keySchedule', keyScheduleEncoder, false],
  ['secretTree', secretTreeEncoder, false],
  ['ratchetTree', ratchetTreeEncoder, true],
  ['privatePath', privateKeyPathEncoder, false],
  ['signaturePrivateKey', varLenDataEncoder, true],
  ['unappliedProposals', unappliedProposalsEncoder, true],
  ['confirmationTag', varLenDataEncoder, true],
  ['historicalReceiverData', bigintMapEncoder(epochReceiverDataEncoder), true],
  ['groupActiveState', groupActiveStateEncoder, true],
]

function encodeState(state: ClientState): Uint8Array {
  const parts = STATE_FIELDS.map(([field, encoder, keep]) => {
    const value = state[field] as never
    keep &&= typeof value === 'object' && value !== null
    const kept = keep ? fieldEncodings.get(value) : undefined
    if (kept) return kept
    const [size, write] = encoder(value)
    const bytes = new Uint8Array(size)
    write(0, bytes.buffer)
    if (keep) fieldEncodings.set(value, bytes)
    return bytes
  })
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

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
  /** The member has no leaf in the group to re-join in place of: only another member can add it. */
  | 'not-in-group'
  /** An external commit that does not put the joiner in place of its own earlier leaf: nobody joins that way. */
  | 'refused-join'
  /** The member lost its group state and asked to be re-added; it can send again once it is. */
  | 'rejoin-pending'

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
  | {
      kind: 'application'
      sender: MemberIdentity
      plaintext: Uint8Array
      /** What the sender bound to the message in the clear (RFC 9420 authenticated_data); empty for a plain text. */
      authenticatedData: Uint8Array
    }
  | {
      kind: 'commit'
      epoch: bigint
      added: MemberIdentity[]
      removed: MemberIdentity[]
      /** Members back in place of their own earlier leaf: they lost their state and re-joined (or were re-added). */
      rejoined: MemberIdentity[]
      removedSelf: boolean
    }

/** A commit made but not yet applied: it takes effect when the delivery service accepts it for `fromEpoch`. */
export interface PendingCommit {
  fromEpoch: bigint
  /** The commit as an MLS message, for every member. */
  commit: Uint8Array
  /** The welcome for the members it adds, if any. */
  welcome?: Uint8Array
  /**
   * The group's signed GroupInfo for the epoch the commit starts, with its external public key and ratchet tree: the
   * delivery service keeps it so that a member that lost its state can re-join by external commit.
   */
  groupInfo: Uint8Array
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
      keyPackageLifetime(),
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

/**
 * The identities of credentials already decoded, by the credential's object: a leaf keeps its object from state to
 * state, and every message read names its sender's leaf, whose credential (a JWT, checked by the authentication
 * service when the leaf entered the group) was decoded again each time: about 4 % of reading a message.
 */
const identities = new WeakMap<Credential, MemberIdentity>()

function identityOf(leaf: LeafNode): MemberIdentity {
  let identity = identities.get(leaf.credential)
  if (!identity) {
    identity = memberOfCredential(leaf.credential)
    identities.set(leaf.credential, identity)
  }
  return { ...identity }
}

const keyOf = leafKeyOf

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

  /**
   * Re-joins a group whose state this member lost, by external commit (RFC 9420, section 12.4.3.2) from the GroupInfo
   * the members publish: the commit takes the member's earlier leaf out and puts a fresh one in its place, so it reads
   * what is sent from the next epoch on (nothing before: those keys went with the lost state). Like any commit it
   * takes effect only once the delivery service accepts it for `fromEpoch`.
   */
  static async joinExternal(member: LocalMember, groupInfo: Uint8Array): Promise<PendingCommit> {
    const decoded = decodeMessage(groupInfo)
    if (decoded.wireformat !== 'mls_group_info') throw new SecureGroupError('invalid-message', 'not an MLS GroupInfo')
    const info = decoded.groupInfo
    let tree: ReturnType<typeof ratchetTreeFromExtension>
    try {
      tree = ratchetTreeFromExtension(info)
    } catch {
      tree = undefined
    }
    const self = memberKeyOf(member.credential)
    if (!tree?.some((node) => node?.nodeType === 'leaf' && memberKeyOf(node.leaf.credential) === self)) {
      throw new SecureGroupError('not-in-group', 'this member has no leaf in the group to re-join in place of')
    }
    const [fresh] = await generateKeyPackages(member, 1)
    if (!fresh) throw new Error('no key package generated')
    let joined: Awaited<ReturnType<typeof joinGroupExternal>>
    try {
      // resync: ts-mls finds the earlier leaf by the member equality of the client configuration (same member).
      joined = await joinGroupExternal(
        info,
        fresh.publicPackage,
        fresh.privatePackage,
        true,
        member.suite,
        undefined,
        member.config,
      )
    } catch {
      throw new SecureGroupError('invalid-message', 'the GroupInfo does not verify')
    }
    const next = new SecureGroup(member, joined.newState)
    return {
      fromEpoch: info.groupContext.epoch,
      commit: encodeMessage({
        version: 'mls10',
        wireformat: 'mls_public_message',
        publicMessage: joined.publicMessage,
      }),
      groupInfo: await next.#groupInfo(),
      adopt: () => next,
    }
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

  /** The state as ts-mls's `encodeGroupState` encodes it (see `encodeState`). */
  serialize(): Uint8Array {
    return encodeState(this.#state)
  }

  /**
   * A commit that adds members (by their key-package messages) and removes others. It is not applied here: the
   * caller sends it to the delivery service and adopts `next` only when it is accepted for `fromEpoch`.
   */
  async commit(changes: { add?: Uint8Array[]; remove?: (member: MemberIdentity) => boolean }): Promise<PendingCommit> {
    this.#requireActive()
    const proposals: Proposal[] = []
    // A member added again (it lost its state and asked to be) leaves its earlier leaf in the same commit.
    const replaced = new Set<string | undefined>()
    for (const bytes of changes.add ?? []) {
      const decoded = decodeMessage(bytes)
      if (decoded.wireformat !== 'mls_key_package') throw new SecureGroupError('invalid-message', 'not a key package')
      proposals.push({ proposalType: 'add', add: { keyPackage: decoded.keyPackage } })
      replaced.add(memberKeyOf(decoded.keyPackage.leafNode.credential))
    }
    const self = this.#state.privatePath.leafIndex
    for (const member of this.members()) {
      if (member.leafIndex === self) continue
      if (replaced.has(keyOf(member.identity)) || changes.remove?.(member.identity)) {
        proposals.push({ proposalType: 'remove', remove: { removed: member.leafIndex } })
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
      groupInfo: await next.#groupInfo(),
      adopt: () => {
        result.consumed.forEach(wipe)
        return next
      },
    }
    if (result.welcome) {
      pending.welcome = encodeMessage({ version: 'mls10', wireformat: 'mls_welcome', welcome: result.welcome })
    }
    return pending
  }

  /**
   * Encrypts application data for the group; persist `group` before `message` leaves the device. `authenticatedData`
   * travels in the clear, authenticated with the message: what kind of message it is, never what it says.
   */
  async encrypt(
    plaintext: Uint8Array,
    authenticatedData?: Uint8Array,
  ): Promise<{ message: Uint8Array; group: SecureGroup }> {
    this.#requireActive()
    const result = await createApplicationMessage(this.#state, plaintext, this.#member.suite, authenticatedData)
    result.consumed.forEach(wipe)
    return {
      message: encodeMessage({
        version: 'mls10',
        wireformat: 'mls_private_message',
        privateMessage: result.privateMessage,
      }),
      group: new SecureGroup(this.#member, result.newState),
    }
  }

  /** The epoch an application message was encrypted in (in its clear header), or undefined for anything else. */
  static epochOf(bytes: Uint8Array): bigint | undefined {
    try {
      const message = decodeMessage(bytes)
      return message.wireformat === 'mls_private_message' ? message.privateMessage.epoch : undefined
    } catch {
      return undefined
    }
  }

  /**
   * Whether a message the delivery service attributes to this member came from this very leaf: its own application
   * messages (which it cannot decrypt) and its own commits (applied when accepted, so of an epoch it has left). The
   * same member's other instance (another browser of the same agent) has a leaf of its own and is read like anyone.
   */
  async sentByThisLeaf(bytes: Uint8Array): Promise<boolean> {
    let message: MLSMessage
    try {
      message = decodeMessage(bytes)
    } catch {
      return false
    }
    if (message.wireformat === 'mls_public_message') return message.publicMessage.content.epoch < this.epoch
    if (message.wireformat !== 'mls_private_message') return false
    // Sender data it cannot decrypt (an epoch whose keys are gone) is nothing it could read anyway.
    const sender = await this.#senderLeafOf(message.privateMessage)
    return sender === undefined || sender.leafIndex === this.#state.privatePath.leafIndex
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
    // Past epochs' keys are kept for a while, and never those from before the member (re-)joined.
    if (framed.epoch < this.epoch && !this.#state.historicalReceiverData.has(framed.epoch)) {
      throw new SecureGroupError('stale-epoch', 'the message is for an epoch whose keys are gone')
    }
    // Only a commit changes the member list, and only a commit arrives as a PublicMessage here.
    const commit = message.wireformat === 'mls_public_message' ? commitContent(message.publicMessage) : undefined
    if (message.wireformat === 'mls_public_message' && commit?.sender.senderType === 'new_member_commit') {
      const replaced = this.#replacedByJoiner(commit)
      if (replaced === this.#state.privatePath.leafIndex) return this.#supersede(message.publicMessage, commit)
    }
    const sender =
      message.wireformat === 'mls_private_message' ? await this.#senderOf(message.privateMessage) : undefined
    let result: Awaited<ReturnType<typeof processMessage>>
    try {
      result = await processMessage(message, this.#state, emptyPskIndex, () => 'accept', this.#member.suite)
    } catch {
      throw new SecureGroupError('invalid-message', 'the message does not decrypt or verify')
    }
    result.consumed.forEach(wipe)
    const group = new SecureGroup(this.#member, result.newState)
    if (result.kind === 'applicationMessage') {
      if (!sender) throw new SecureGroupError('invalid-message', 'the sender is not a member')
      const authenticatedData =
        message.wireformat === 'mls_private_message' ? message.privateMessage.authenticatedData : new Uint8Array()
      return { group, event: { kind: 'application', sender, plaintext: result.message, authenticatedData } }
    }
    // Strongroom sends commits as PublicMessages and relays no proposals: anything else changes nothing here.
    if (!commit) throw new SecureGroupError('invalid-message', 'not an application message or a public commit')
    return {
      group,
      event: { kind: 'commit', epoch: group.epoch, ...this.#changesOf(commit), removedSelf: group.removed },
    }
  }

  /**
   * Who a commit (already verified) adds and removes, from its proposals and the tree it applied to. A member added
   * in place of its own earlier leaf, or joining by external commit in place of it, has re-joined.
   */
  #changesOf(
    commit: FramedContentCommit,
  ): Pick<Extract<GroupEvent, { kind: 'commit' }>, 'added' | 'removed' | 'rejoined'> {
    const proposals = commit.commit.proposals.flatMap((p) => (p.proposalOrRefType === 'proposal' ? [p.proposal] : []))
    const removed = proposals.flatMap((p) => {
      const node = p.proposalType === 'remove' ? this.#state.ratchetTree[p.remove.removed * 2] : undefined
      return node?.nodeType === 'leaf' ? [identityOf(node.leaf)] : []
    })
    const added = proposals.flatMap((p) => (p.proposalType === 'add' ? [identityOf(p.add.keyPackage.leafNode)] : []))
    if (commit.sender.senderType === 'new_member_commit' && commit.commit.path) {
      added.push(identityOf(commit.commit.path.leafNode))
    }
    const back = new Set(added.map(keyOf).filter((key) => removed.some((m) => keyOf(m) === key)))
    return {
      added: added.filter((m) => !back.has(keyOf(m))),
      removed: removed.filter((m) => !back.has(keyOf(m))),
      rejoined: added.filter((m) => back.has(keyOf(m))),
    }
  }

  /**
   * The leaf an external commit takes out: it must be the joiner's own (RFC 9420 allows an external commit to remove
   * only the joiner's earlier leaf, to resync). Strongroom accepts no other external join: a member that never was in
   * the group is added by a member, visibly, through the key-package directory.
   */
  #replacedByJoiner(commit: FramedContentCommit): number {
    const removes = commit.commit.proposals.flatMap((p) =>
      p.proposalOrRefType === 'proposal' && p.proposal.proposalType === 'remove' ? [p.proposal.remove.removed] : [],
    )
    const joiner = commit.commit.path ? memberKeyOf(commit.commit.path.leafNode.credential) : undefined
    const [removed] = removes
    const earlier = removed === undefined ? undefined : this.#state.ratchetTree[removed * 2]
    if (
      removes.length !== 1 ||
      removed === undefined ||
      joiner === undefined ||
      earlier?.nodeType !== 'leaf' ||
      memberKeyOf(earlier.leaf.credential) !== joiner
    ) {
      throw new SecureGroupError('refused-join', 'an external commit may only put the joiner in place of its own leaf')
    }
    return removed
  }

  /**
   * Another instance of this very member (the same device or staff member with a store of its own) re-joined in
   * place of this one's leaf: this state can read nothing more. Checked as far as it can be without the next epoch's
   * keys: signed by the joiner's leaf key, with a credential the authority signed.
   */
  async #supersede(
    message: PublicMessage,
    commit: FramedContentCommit,
  ): Promise<{ group: SecureGroup; event: GroupEvent }> {
    const { groupContext, ratchetTree, keySchedule } = this.#state
    const leaf = commit.commit.path?.leafNode
    let valid: boolean
    try {
      await unprotectPublicMessage(keySchedule.membershipKey, groupContext, ratchetTree, message, this.#member.suite)
      valid =
        leaf !== undefined &&
        (await this.#member.config.authService.validateCredential(leaf.credential, leaf.signaturePublicKey))
    } catch {
      valid = false
    }
    if (!valid || !leaf) throw new SecureGroupError('invalid-message', 'the message does not decrypt or verify')
    const group = new SecureGroup(this.#member, { ...this.#state, groupActiveState: { kind: 'removedFromGroup' } })
    const self = identityOf(leaf)
    return {
      group,
      event: { kind: 'commit', epoch: this.epoch + 1n, added: [], removed: [], rejoined: [self], removedSelf: true },
    }
  }

  /**
   * The sender of a private message, from its encrypted sender data and the tree of the message's epoch. ts-mls does
   * not return it; processing then verifies the signature with this very leaf's key, so the identity is authenticated.
   */
  async #senderOf(message: PrivateMessage): Promise<MemberIdentity | undefined> {
    const sender = await this.#senderLeafOf(message)
    const node = sender ? sender.tree[sender.leafIndex * 2] : undefined
    return node?.nodeType === 'leaf' ? identityOf(node.leaf) : undefined
  }

  async #senderLeafOf(message: PrivateMessage) {
    const epochData = message.epoch === this.epoch ? undefined : this.#state.historicalReceiverData.get(message.epoch)
    const senderDataSecret = epochData ? epochData.senderDataSecret : this.#state.keySchedule.senderDataSecret
    const tree = epochData ? epochData.ratchetTree : this.#state.ratchetTree
    try {
      const senderData = await decryptSenderData(message, senderDataSecret, this.#member.suite)
      return senderData ? { leafIndex: senderData.leafIndex, tree } : undefined
    } catch {
      return undefined
    }
  }

  async #groupInfo(): Promise<Uint8Array> {
    const info = await createGroupInfoWithExternalPubAndRatchetTree(this.#state, [], this.#member.suite)
    return encodeMessage({ version: 'mls10', wireformat: 'mls_group_info', groupInfo: info })
  }

  #requireActive(): void {
    if (this.removed) throw new SecureGroupError('removed', 'this member has been removed from the group')
  }
}

function commitContent(message: PublicMessage): FramedContentCommit | undefined {
  const content = message.content
  return content.contentType === 'commit' ? content : undefined
}
