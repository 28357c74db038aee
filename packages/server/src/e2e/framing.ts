import { type MemberIdentity, memberOfCredential, nodeCryptoProvider } from '@strongroom/sdk/mls-node'
import { mlsCipherSuites } from '@strongroom/sdk/protocol'
import {
  type CiphersuiteImpl,
  type CiphersuiteName,
  decodeMlsMessage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  type KeyPackage,
  type MLSMessage,
  type Proposal,
} from 'ts-mls'
import { type GroupInfo, ratchetTreeFromExtension } from 'ts-mls/groupInfo.js'
import { makeKeyPackageRef, verifyKeyPackage } from 'ts-mls/keyPackage.js'
import { Problem } from '../platform/http/problems.ts'

/**
 * What the delivery service reads of MLS messages: their framing (group, epoch, content type) and the key packages in
 * commits and uploads. It holds no group secret, so it never sees content; it checks signatures on key packages only.
 */

/** The suites a Strongroom group may use (the SDK's protocol lists them: a group's `cipherSuite` is one). */
export const ALLOWED_SUITES = mlsCipherSuites satisfies readonly CiphersuiteName[]
export type AllowedSuite = (typeof ALLOWED_SUITES)[number]

const suites = new Map<string, Promise<CiphersuiteImpl>>()
export function suiteImpl(name: AllowedSuite): Promise<CiphersuiteImpl> {
  let impl = suites.get(name)
  if (!impl) {
    impl = getCiphersuiteImpl(getCiphersuiteFromName(name), nodeCryptoProvider)
    suites.set(name, impl)
  }
  return impl
}

export function decodeWhole(bytes: Uint8Array): MLSMessage {
  let decoded: ReturnType<typeof decodeMlsMessage>
  try {
    decoded = decodeMlsMessage(bytes, 0)
  } catch {
    decoded = undefined
  }
  if (!decoded || decoded[1] !== bytes.length) throw new Problem('e2e/malformed-message', 'not an MLS message')
  return decoded[0]
}

export interface Framing {
  groupId: Uint8Array
  epoch: bigint
  contentType: 'application' | 'proposal' | 'commit'
}

/** The framing of a group message; anything else (a welcome, a key package) is refused. */
export function framingOf(message: MLSMessage): Framing {
  if (message.wireformat === 'mls_private_message') {
    const m = message.privateMessage
    return { groupId: m.groupId, epoch: m.epoch, contentType: m.contentType }
  }
  if (message.wireformat === 'mls_public_message') {
    const c = message.publicMessage.content
    return { groupId: c.groupId, epoch: c.epoch, contentType: c.contentType }
  }
  throw new Problem('e2e/malformed-message', 'not a group message')
}

/** The proposals of a public commit, inline. By reference they are refused: the delivery service must see each. */
export function commitProposals(message: MLSMessage): Proposal[] {
  if (message.wireformat !== 'mls_public_message') return []
  const content = message.publicMessage.content
  if (content.contentType !== 'commit') return []
  return content.commit.proposals.map((p) => {
    if (p.proposalOrRefType !== 'proposal') {
      throw new Problem('e2e/malformed-message', 'proposals by reference are not accepted in commits')
    }
    return p.proposal
  })
}

/** The key packages a public commit adds. */
export function addedKeyPackages(message: MLSMessage): KeyPackage[] {
  return commitProposals(message).flatMap((p) => (p.proposalType === 'add' ? [p.add.keyPackage] : []))
}

/**
 * A GroupInfo as the delivery service reads it: an MLS GroupInfo of this group for this epoch. Its signature and
 * tree are for the members to verify (against the credential authority); here it is otherwise opaque.
 */
export function checkedGroupInfo(bytes: Uint8Array, groupId: Uint8Array, epoch: bigint): GroupInfo {
  const message = decodeWhole(bytes)
  if (message.wireformat !== 'mls_group_info') throw new Problem('e2e/malformed-message', 'not an MLS GroupInfo')
  const context = message.groupInfo.groupContext
  if (!Buffer.from(context.groupId).equals(Buffer.from(groupId))) throw new Problem('e2e/wrong-group')
  if (context.epoch !== epoch) {
    throw new Problem('e2e/malformed-message', 'the GroupInfo is not for the epoch the commit starts')
  }
  return message.groupInfo
}

/** The member at a leaf of the ratchet tree a GroupInfo carries, if the leaf is occupied by a readable credential. */
export function memberAtLeaf(groupInfo: GroupInfo, leafIndex: number): MemberIdentity | undefined {
  try {
    const node = ratchetTreeFromExtension(groupInfo)?.[leafIndex * 2]
    return node?.nodeType === 'leaf' ? memberOfCredential(node.leaf.credential) : undefined
  } catch {
    return undefined
  }
}

/** A key package's reference (RFC 9420, section 5.2): how a welcome names the package it was made for. */
export async function keyPackageRef(keyPackage: KeyPackage): Promise<string> {
  const suite = await suiteImpl(requireAllowedSuite(keyPackage.cipherSuite))
  return Buffer.from(await makeKeyPackageRef(keyPackage, suite.hash)).toString('hex')
}

export async function verifyKeyPackageSignature(keyPackage: KeyPackage): Promise<boolean> {
  const suite = await suiteImpl(requireAllowedSuite(keyPackage.cipherSuite))
  return verifyKeyPackage(keyPackage, suite.signature)
}

export function requireAllowedSuite(name: string): AllowedSuite {
  if (!(ALLOWED_SUITES as readonly string[]).includes(name)) {
    throw new Problem('e2e/unsupported-suite', 'the cipher suite is not one Strongroom allows')
  }
  return name as AllowedSuite
}
