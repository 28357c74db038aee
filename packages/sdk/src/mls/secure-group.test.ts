import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import { exportJWK, generateKeyPair, type JWK } from 'jose'
import {
  decodeGroupState,
  decodeMlsMessage,
  encodeGroupState,
  encodeMlsMessage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroupExternal,
} from 'ts-mls'
import { secureGroupClientConfig } from './group-config.ts'
import {
  credentialAuthorityService,
  type MemberIdentity,
  memberKeyOf,
  mlsCredential,
  signMemberCredential,
} from './member-credential.ts'
import { nodeCryptoProvider } from './node-crypto-provider.ts'
import {
  generateKeyPackages,
  type KeyPackageSecrets,
  type LocalMember,
  SecureGroup,
  type SecureGroupError,
} from './secure-group.ts'

const TENANT = 'ten_test'
const text = (s: string) => new TextEncoder().encode(s)
const read = (b: Uint8Array) => new TextDecoder().decode(b)

let authority: { privateKey: CryptoKey; jwks: JWK[] }

async function member(identity: MemberIdentity, options: { tenantId?: string; signWith?: CryptoKey } = {}) {
  const suite = await getCiphersuiteImpl(
    getCiphersuiteFromName('MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'),
    nodeCryptoProvider,
  )
  const signatureKey = await suite.signature.keygen()
  const credential = await signMemberCredential(options.signWith ?? authority.privateKey, 'ca-1', {
    tenantId: options.tenantId ?? TENANT,
    member: identity,
    signaturePublicKey: signatureKey.publicKey,
  })
  const local: LocalMember = {
    suite,
    config: secureGroupClientConfig(credentialAuthorityService(authority.jwks, TENANT)),
    credential: mlsCredential(credential),
    signatureKey,
  }
  const packages = await generateKeyPackages(local, 2)
  const keyPackage = (packages[0] as KeyPackageSecrets).message
  return { local, keyPackage, find: (ref: string) => packages.find((p) => p.ref === ref) }
}

describe('secure groups (MLS) between a customer device, an agent and the archive', () => {
  before(async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true })
    authority = { privateKey, jwks: [{ ...(await exportJWK(publicKey)), kid: 'ca-1' }] }
  })

  async function threeMembers() {
    const phone = await member({ kind: 'device', id: 'dev_phone', customerId: 'cus_1' })
    const agent = await member({ kind: 'staff', id: 'stf_agent' })
    const archive = await member({ kind: 'archive', id: 'archive' })
    const created = await SecureGroup.create(agent.local, text('cnv_1'))
    const pending = await created.commit({ add: [phone.keyPackage, archive.keyPackage] })
    assert.equal(pending.fromEpoch, 0n)
    assert.ok(pending.welcome)
    const agentGroup = pending.adopt()
    const phoneGroup = (await SecureGroup.join(phone.local, pending.welcome, phone.find)).group
    const archiveGroup = (await SecureGroup.join(archive.local, pending.welcome, archive.find)).group
    return { phone, agent, archive, agentGroup, phoneGroup, archiveGroup, groupInfo: pending.groupInfo }
  }

  /**
   * An external commit made with ts-mls directly, as a client that does not follow Strongroom's rules could:
   * `replacing` picks the leaf it takes out (none: a plain external join).
   */
  async function rawExternalCommit(
    joiner: Awaited<ReturnType<typeof member>>,
    groupInfo: Uint8Array,
    replacing?: string,
  ): Promise<Uint8Array> {
    const decoded = decodeMlsMessage(groupInfo, 0)?.[0]
    assert.equal(decoded?.wireformat, 'mls_group_info')
    const [fresh] = await generateKeyPackages(joiner.local, 1)
    const config = {
      ...joiner.local.config,
      keyPackageEqualityConfig: {
        compareKeyPackages: () => false,
        compareKeyPackageToLeafNode: (_: unknown, leaf: { credential: Parameters<typeof memberKeyOf>[0] }) =>
          memberKeyOf(leaf.credential) === replacing,
      },
    }
    const joined = await joinGroupExternal(
      (decoded as Extract<typeof decoded, { wireformat: 'mls_group_info' }>).groupInfo,
      (fresh as KeyPackageSecrets).publicPackage,
      (fresh as KeyPackageSecrets).privatePackage,
      replacing !== undefined,
      joiner.local.suite,
      undefined,
      config,
    )
    return encodeMlsMessage({ version: 'mls10', wireformat: 'mls_public_message', publicMessage: joined.publicMessage })
  }

  test('every member sees the same verified member list and reads what the others send', async () => {
    const { agentGroup, phoneGroup, archiveGroup } = await threeMembers()
    const ids = (g: SecureGroup) => g.members().map((m) => `${m.identity.kind}:${m.identity.id}`)
    assert.deepEqual(ids(phoneGroup), ['staff:stf_agent', 'device:dev_phone', 'archive:archive'])
    assert.deepEqual(ids(archiveGroup), ids(phoneGroup))
    assert.equal(phoneGroup.members()[1]?.identity.customerId, 'cus_1')
    const sent = await phoneGroup.encrypt(text('Is my card blocked?'))
    assert.ok(!Buffer.from(sent.message).includes('Is my card blocked?'), 'the wire holds no plaintext')
    const atAgent = await agentGroup.process(sent.message)
    assert.deepEqual(atAgent.event.kind === 'application' && [read(atAgent.event.plaintext), atAgent.event.sender.id], [
      'Is my card blocked?',
      'dev_phone',
    ])
    const atArchive = await archiveGroup.process(sent.message)
    assert.equal(atArchive.event.kind === 'application' && read(atArchive.event.plaintext), 'Is my card blocked?')
  })

  test('a group stored after each message and commit is the state ts-mls encodes, and reads on when restored', async () => {
    let { agent, phone, agentGroup, phoneGroup } = await threeMembers()
    // What ts-mls makes of the stored bytes is those bytes again: the SDK's encoding is ts-mls's own.
    const sameAsTsMls = (group: SecureGroup) => {
      const bytes = group.serialize()
      const decoded = decodeGroupState(bytes, 0)?.[0]
      assert.ok(decoded)
      assert.deepEqual(encodeGroupState(decoded), bytes)
      return bytes
    }
    for (let i = 0; i < 3; i++) {
      const sent = await phoneGroup.encrypt(text(`message ${i}`))
      phoneGroup = sent.group
      sameAsTsMls(phoneGroup)
      // The agent's state is stored and restored between messages, as a store does: each restored state reads on.
      const restored = SecureGroup.restore(agent.local, sameAsTsMls(agentGroup))
      const read1 = await restored.process(sent.message)
      assert.equal(read1.event.kind === 'application' && read(read1.event.plaintext), `message ${i}`)
      agentGroup = read1.group
    }
    // A state stored after its last message cannot read that message again (its key is gone from the stored bytes).
    const last = await phoneGroup.encrypt(text('once'))
    const afterOnce = (await agentGroup.process(last.message)).group
    await assert.rejects(SecureGroup.restore(agent.local, sameAsTsMls(afterOnce)).process(last.message))
    // After a commit every field is new; the restored states still agree.
    const removal = await afterOnce.commit({ remove: (m) => m.kind === 'archive' })
    const agentAfter = SecureGroup.restore(agent.local, sameAsTsMls(removal.adopt()))
    const phoneAfter = (await SecureGroup.restore(phone.local, sameAsTsMls(last.group)).process(removal.commit)).group
    const reply = await SecureGroup.restore(phone.local, sameAsTsMls(phoneAfter)).encrypt(text('after the commit'))
    const readReply = await agentAfter.process(reply.message)
    assert.equal(readReply.event.kind === 'application' && read(readReply.event.plaintext), 'after the commit')
  })

  test('a removed device reads nothing sent after its removal; the others move on', async () => {
    const { agentGroup, phoneGroup, archiveGroup } = await threeMembers()
    const removal = await agentGroup.commit({ remove: (m) => m.kind === 'device' && m.id === 'dev_phone' })
    const phoneAfter = await phoneGroup.process(removal.commit)
    assert.equal(phoneAfter.event.kind === 'commit' && phoneAfter.event.removedSelf, true)
    const archiveAfter = await archiveGroup.process(removal.commit)
    assert.deepEqual(archiveAfter.event.kind === 'commit' && archiveAfter.event.removed.map((m) => m.id), ['dev_phone'])
    const secret = await removal.adopt().encrypt(text('your new PIN letter is on its way'))
    await assert.rejects(phoneAfter.group.process(secret.message), (e: SecureGroupError) => e.code === 'removed')
    // Even a copy of the phone's state from before the removal has no key for the new epoch.
    await assert.rejects(phoneGroup.process(secret.message), (e: SecureGroupError) => e.code === 'future-epoch')
    const read2 = await archiveAfter.group.process(secret.message)
    assert.equal(read2.event.kind === 'application' && read(read2.event.plaintext), 'your new PIN letter is on its way')
  })

  test('a commit the delivery service refused leaves the group intact to apply the one that won', async () => {
    const { agentGroup, phoneGroup } = await threeMembers()
    const tablet = await member({ kind: 'device', id: 'dev_tablet', customerId: 'cus_1' })
    const laptop = await member({ kind: 'device', id: 'dev_laptop', customerId: 'cus_1' })
    // Both commit at the same epoch; the phone's wins, the agent's is refused and never adopted.
    const refused = await agentGroup.commit({ add: [laptop.keyPackage] })
    const winner = await phoneGroup.commit({ add: [tablet.keyPackage] })
    assert.equal(refused.fromEpoch, winner.fromEpoch)
    const applied = await agentGroup.process(winner.commit)
    assert.equal(applied.group.epoch, winner.fromEpoch + 1n)
    const rebased = await applied.group.commit({ add: [laptop.keyPackage] })
    assert.equal(rebased.fromEpoch, winner.fromEpoch + 1n)
  })

  test('a member rejects a credential the authority did not sign, or signed for another tenant', async () => {
    const { agentGroup } = await threeMembers()
    const { privateKey: rogueKey } = await generateKeyPair('EdDSA')
    const rogue = await member({ kind: 'staff', id: 'stf_rogue' }, { signWith: rogueKey })
    await assert.rejects(agentGroup.commit({ add: [rogue.keyPackage] }))
    const elsewhere = await member({ kind: 'staff', id: 'stf_other' }, { tenantId: 'ten_other' })
    await assert.rejects(agentGroup.commit({ add: [elsewhere.keyPackage] }))
  })

  test('tampered, foreign and garbage messages are refused with a clear code', async () => {
    const { agentGroup, phoneGroup } = await threeMembers()
    const sent = await phoneGroup.encrypt(text('hello'))
    const tampered = Uint8Array.from(sent.message)
    tampered[tampered.length - 3] = (tampered[tampered.length - 3] as number) ^ 0x40
    await assert.rejects(agentGroup.process(tampered), (e: SecureGroupError) => e.code === 'invalid-message')
    await assert.rejects(agentGroup.process(text('not mls')), (e: SecureGroupError) => e.code === 'invalid-message')
    const other = await member({ kind: 'staff', id: 'stf_other' })
    const otherGroup = await SecureGroup.create(other.local, text('cnv_other'))
    const foreign = await otherGroup.encrypt(text('elsewhere'))
    await assert.rejects(agentGroup.process(foreign.message), (e: SecureGroupError) => e.code === 'wrong-group')
  })

  test('the stored state restores to a group that keeps reading, and a welcome needs a held key package', async () => {
    const { agentGroup, phoneGroup, phone } = await threeMembers()
    const restored = SecureGroup.restore(phone.local, phoneGroup.serialize())
    assert.equal(restored.epoch, phoneGroup.epoch)
    const sent = await agentGroup.encrypt(text('after restore'))
    const got = await restored.process(sent.message)
    assert.equal(got.event.kind === 'application' && read(got.event.plaintext), 'after restore')
    const late = await member({ kind: 'device', id: 'dev_tablet', customerId: 'cus_1' })
    const pending = await agentGroup.commit({ add: [late.keyPackage] })
    await assert.rejects(
      SecureGroup.join(late.local, pending.welcome as Uint8Array, () => undefined),
      (e: SecureGroupError) => e.code === 'no-key-package',
    )
  })

  test('a member that lost its state re-joins by external commit in place of its own leaf and reads only what follows', async () => {
    const { agentGroup, phoneGroup, archiveGroup, groupInfo } = await threeMembers()
    const before = await agentGroup.encrypt(text('before the phone lost its state'))
    // The reinstalled phone: the same device, with new keys and a new credential for them.
    const reinstalled = await member({ kind: 'device', id: 'dev_phone', customerId: 'cus_1' })
    const rejoin = await SecureGroup.joinExternal(reinstalled.local, groupInfo)
    assert.equal(rejoin.fromEpoch, 1n)
    assert.equal(rejoin.welcome, undefined)
    const atAgent = await before.group.process(rejoin.commit)
    assert.deepEqual(atAgent.event.kind === 'commit' && atAgent.event, {
      kind: 'commit',
      epoch: 2n,
      added: [],
      removed: [],
      rejoined: [{ kind: 'device', id: 'dev_phone', customerId: 'cus_1' }],
      removedSelf: false,
    })
    const atArchive = await archiveGroup.process(rejoin.commit)
    const phone = rejoin.adopt()
    const ids = (g: SecureGroup) => g.members().map((m) => `${m.identity.kind}:${m.identity.id}`)
    assert.deepEqual(ids(phone).sort(), ['archive:archive', 'device:dev_phone', 'staff:stf_agent'])
    assert.deepEqual(ids(atAgent.group), ids(phone))
    const after = await atAgent.group.encrypt(text('after the re-join'))
    const read1 = await phone.process(after.message)
    assert.equal(read1.event.kind === 'application' && read(read1.event.plaintext), 'after the re-join')
    const read2 = await atArchive.group.process(after.message)
    assert.equal(read2.event.kind === 'application' && read(read2.event.plaintext), 'after the re-join')
    // What was sent before is gone with the lost state: the new leaf never had those keys.
    await assert.rejects(phone.process(before.message), (e: SecureGroupError) => e.code === 'stale-epoch')
    // A copy of the old state (the same phone, another store) learns it was replaced and reads nothing more.
    const superseded = await phoneGroup.process(rejoin.commit)
    assert.equal(superseded.event.kind === 'commit' && superseded.event.removedSelf, true)
    await assert.rejects(superseded.group.process(after.message), (e: SecureGroupError) => e.code === 'removed')
  })

  test('external commits that join anew, take another member’s place or carry a forged credential are refused', async () => {
    const { agentGroup, groupInfo } = await threeMembers()
    const outsider = await member({ kind: 'device', id: 'dev_outsider', customerId: 'cus_1' })
    await assert.rejects(
      SecureGroup.joinExternal(outsider.local, groupInfo),
      (e: SecureGroupError) => e.code === 'not-in-group',
    )
    // Joining without taking a leaf out, or in place of the phone's leaf: members refuse both.
    for (const commit of [
      await rawExternalCommit(outsider, groupInfo),
      await rawExternalCommit(outsider, groupInfo, 'device:dev_phone'),
    ]) {
      await assert.rejects(agentGroup.process(commit), (e: SecureGroupError) => e.code === 'refused-join')
    }
    // The phone's identity, but a credential the authority never signed.
    const { privateKey: rogueKey } = await generateKeyPair('EdDSA')
    const forged = await member({ kind: 'device', id: 'dev_phone', customerId: 'cus_1' }, { signWith: rogueKey })
    const forgedCommit = await rawExternalCommit(forged, groupInfo, 'device:dev_phone')
    await assert.rejects(agentGroup.process(forgedCommit), (e: SecureGroupError) => e.code === 'invalid-message')
    // The same commit, made with a credential the authority did sign, is accepted.
    const genuine = await member({ kind: 'device', id: 'dev_phone', customerId: 'cus_1' })
    const accepted = await agentGroup.process(await rawExternalCommit(genuine, groupInfo, 'device:dev_phone'))
    assert.deepEqual(accepted.event.kind === 'commit' && accepted.event.rejoined.map((m) => m.id), ['dev_phone'])
    // Nor does a GroupInfo that is not one get anywhere.
    await assert.rejects(
      SecureGroup.joinExternal(outsider.local, text('not mls')),
      (e: SecureGroupError) => e.code === 'invalid-message',
    )
  })

  test('adding a member that is in the group already replaces its leaf in the same commit', async () => {
    const { agentGroup, archiveGroup } = await threeMembers()
    const reinstalled = await member({ kind: 'device', id: 'dev_phone', customerId: 'cus_1' })
    const readd = await archiveGroup.commit({ add: [reinstalled.keyPackage] })
    const atAgent = await agentGroup.process(readd.commit)
    assert.deepEqual(atAgent.event.kind === 'commit' && atAgent.event.rejoined.map((m) => m.id), ['dev_phone'])
    assert.equal(atAgent.group.members().length, 3)
    const joined = await SecureGroup.join(reinstalled.local, readd.welcome as Uint8Array, reinstalled.find)
    const sent = await atAgent.group.encrypt(text('welcome back'))
    const got = await joined.group.process(sent.message)
    assert.equal(got.event.kind === 'application' && read(got.event.plaintext), 'welcome back')
  })

  test('a quiet group stays joinable after the key packages its members came in by have expired', async () => {
    const { agentGroup, phoneGroup } = await threeMembers()
    const tablet = await member({ kind: 'device', id: 'dev_tablet', customerId: 'cus_1' })
    // Four months on. The phone and the archive never committed, so their leaves still carry the 90-day lifetimes of
    // the key packages that added them; the tablet's package, never used, has expired too.
    const realNow = Date.now
    Date.now = () => realNow() + 120 * 24 * 3600 * 1000
    try {
      // The conversation is handed to another agent, who joins by a welcome carrying the whole tree.
      const second = await member({ kind: 'staff', id: 'stf_second' })
      const handover = await agentGroup.commit({ add: [second.keyPackage] })
      const joined = (await SecureGroup.join(second.local, handover.welcome as Uint8Array, second.find)).group
      const asked = await (await phoneGroup.process(handover.commit)).group.encrypt(text('Still there?'))
      const got = await joined.process(asked.message)
      assert.equal(got.event.kind === 'application' && read(got.event.plaintext), 'Still there?')
      // The phone, its store lost, re-joins by external commit from the GroupInfo the handover published.
      const reinstalled = await member({ kind: 'device', id: 'dev_phone', customerId: 'cus_1' })
      const rejoin = await SecureGroup.joinExternal(reinstalled.local, handover.groupInfo)
      const seen = await got.group.process(rejoin.commit)
      assert.deepEqual(seen.event.kind === 'commit' && seen.event.rejoined.map((m) => m.id), ['dev_phone'])
      // A key package whose own lifetime is over is still refused by the member that would add it.
      await assert.rejects(handover.adopt().commit({ add: [tablet.keyPackage] }))
    } finally {
      Date.now = realNow
    }
  })
})
