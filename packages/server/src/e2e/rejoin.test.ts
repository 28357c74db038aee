import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import {
  base64ToBytes,
  bytesToBase64,
  type MemberClient,
  StaffClient,
  StaffToken,
  type StrongroomError,
} from '@strongroom/sdk'
import {
  credentialAuthorityService,
  type DeliveryService,
  generateKeyPackages,
  isEpochConflict,
  type LocalMember,
  memberOfCredential,
  mlsCredential,
  nodeCryptoProvider,
  type SecureEvent,
  SecureGroup,
  secureGroupClientConfig,
  signMemberCredential,
} from '@strongroom/sdk/mls-node'
import { base64url, decodeJwt, generateKeyPair, type JWK } from 'jose'
import {
  type Credential,
  decodeMlsMessage,
  encodeMlsMessage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroupExternal,
} from 'ts-mls'
import type { ArchiveRecord } from '../archive/archive-member.ts'
import { appendInTransaction } from '../conversations/message-log.ts'
import { loadConfig } from '../platform/config.ts'
import { openDatabase } from '../platform/db/database.ts'
import { eventually } from '../testing/eventually.ts'
import {
  createTestBank,
  createTestDatabase,
  startTestServer,
  type TestBank,
  type TestServer,
} from '../testing/harness.ts'
import { enrolPhone, openMember, secureConversation, startArchivingServer, texts } from '../testing/secure-members.ts'
import { MLS_CONTENT_TYPE } from './groups.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'
const SUITE = 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'

const kinds = (events: SecureEvent[]) => events.map((e) => e.kind)
const joinedBy = (events: SecureEvent[]) => events.flatMap((e) => (e.kind === 'joined' ? [e.via] : []))
const rejoinedIds = (events: SecureEvent[]) =>
  events.flatMap((e) => (e.kind === 'members-changed' ? e.rejoined.map((m) => `${m.kind}:${m.id}`) : []))

/**
 * An MLS identity for a principal, made by hand the way a client that does not use SecureMessaging could: a new
 * signature key with a credential the server issued for it, or one signed by `forgeWith` instead.
 */
async function handMadeMember(
  client: MemberClient,
  forgeWith?: { key: CryptoKey; member: { kind: 'device'; id: string; customerId: string } },
): Promise<LocalMember> {
  const suite = await getCiphersuiteImpl(getCiphersuiteFromName(SUITE), nodeCryptoProvider)
  const signatureKey = await suite.signature.keygen()
  const { keys } = await client.request<{ keys: JWK[] }>('GET', '/v1/e2e/credential-authority')
  const { credential } = await client.request<{ credential: string }>('POST', '/v1/e2e/credentials', {
    signaturePublicKey: base64url.encode(signatureKey.publicKey),
  })
  const tenantId = decodeJwt(credential).tid as string
  const signed = forgeWith
    ? await signMemberCredential(forgeWith.key, 'forged', {
        tenantId,
        member: forgeWith.member,
        signaturePublicKey: signatureKey.publicKey,
      })
    : credential
  return {
    suite,
    config: secureGroupClientConfig(credentialAuthorityService(keys, tenantId)),
    credential: mlsCredential(signed),
    signatureKey,
  }
}

/** An external commit made with ts-mls directly, taking out the leaf of `replacing` (not necessarily the joiner's). */
async function externalCommitReplacing(joiner: LocalMember, groupInfo: Uint8Array, replacing: string) {
  const decoded = decodeMlsMessage(groupInfo, 0)?.[0]
  if (decoded?.wireformat !== 'mls_group_info') throw new Error('not a GroupInfo')
  const [fresh] = await generateKeyPackages(joiner, 1)
  if (!fresh) throw new Error('no key package')
  const sameAsReplaced = (_: unknown, leaf: { credential: Credential }) => {
    const member = memberOfCredential(leaf.credential)
    return `${member.kind}:${member.id}` === replacing
  }
  const config = {
    ...joiner.config,
    keyPackageEqualityConfig: { compareKeyPackages: () => false, compareKeyPackageToLeafNode: sameAsReplaced },
  }
  const joined = await joinGroupExternal(
    decoded.groupInfo,
    fresh.publicPackage,
    fresh.privatePackage,
    true,
    joiner.suite,
    undefined,
    config,
  )
  return encodeMlsMessage({ version: 'mls10', wireformat: 'mls_public_message', publicMessage: joined.publicMessage })
}

describe('recovering a member that lost its MLS group state, over the real server', () => {
  let server: TestServer
  let bank: TestBank
  let archived: ArchiveRecord[]
  let archivedTexts: (conversationId: string) => string[]

  before(async () => {
    ;({ server, bank, archived, archivedTexts } = await startArchivingServer())
  })
  after(() => server.stop())

  const epochOf = async (client: MemberClient, conversationId: string) =>
    (await client.request<{ epoch: number }>('GET', `/v1/conversations/${conversationId}/e2e/group`)).epoch
  const groupInfoOf = async (client: MemberClient, conversationId: string) =>
    base64ToBytes(
      (await client.request<{ groupInfo: string }>('GET', `/v1/conversations/${conversationId}/e2e/group-info`))
        .groupInfo,
    )
  const submit = (
    client: MemberClient,
    conversationId: string,
    commit: { commit: Uint8Array; groupInfo: Uint8Array },
  ) =>
    client.request('POST', `/v1/conversations/${conversationId}/e2e/commits`, {
      clientMessageId: `hand-made-${Math.random().toString(36).slice(2)}`,
      commit: bytesToBase64(commit.commit),
      groupInfo: bytesToBase64(commit.groupInfo),
    })
  const audited = async (action: string, outcome: 'success' | 'failure') =>
    (
      await server.ctx.db
        .selectFrom('audit_events')
        .select(['actor_id', 'reason'])
        .where('tenant_id', '=', bank.tenantId)
        .where('action', '=', action)
        .where('outcome', '=', outcome)
        .execute()
    ).map((r) => ({ actor: r.actor_id, reason: r.reason }))

  test('a device that lost its store re-joins by external commit and reads what follows, not what came before', async () => {
    const { conversationId, agent, phone } = await secureConversation(server, bank)
    await agent.secure.send(conversationId, 'before the phone lost its store')
    assert.deepEqual(texts(await phone.secure.sync(conversationId)), ['before the phone lost its store'])

    // The app's store is gone (cleared, reinstalled): the same device, a new MLS identity.
    const reinstalled = await openMember(phone.client)
    await agent.secure.send(conversationId, 'sent while the phone had no state')
    const events = await reinstalled.secure.sync(conversationId)
    assert.deepEqual(joinedBy(events), ['external-commit'])
    assert.deepEqual(texts(events), [], 'what was sent before the re-join is gone with the lost state')

    // The other members accept it after checking its credential, and see who came back.
    const atAgent = await agent.secure.sync(conversationId)
    assert.deepEqual(rejoinedIds(atAgent), [`device:${phone.deviceId}`])
    const change = atAgent.find((e) => e.kind === 'members-changed')
    assert.deepEqual(change?.kind === 'members-changed' && [change.added, change.removed, change.removedSelf], [
      [],
      [],
      false,
    ])
    assert.deepEqual((await agent.secure.members(conversationId)).map((m) => m.kind).sort(), [
      'archive',
      'device',
      'staff',
    ])
    await agent.secure.send(conversationId, 'after the re-join')
    assert.deepEqual(texts(await reinstalled.secure.sync(conversationId)), ['after the re-join'])
    await reinstalled.secure.send(conversationId, 'from the phone again')
    assert.deepEqual(texts(await agent.secure.sync(conversationId)), ['from the phone again'])

    // The archive member reads on across it, every message included.
    const read = await eventually(
      () => archivedTexts(conversationId),
      (t) => t.length >= 4,
    )
    assert.deepEqual(read, [
      'before the phone lost its store',
      'sent while the phone had no state',
      'after the re-join',
      'from the phone again',
    ])
    assert.ok(
      archived.some(
        (r) =>
          r.kind === 'members-changed' && r.conversationId === conversationId && r.rejoined[0]?.id === phone.deviceId,
      ),
    )
    assert.ok((await audited('e2e.rejoin', 'success')).some((a) => a.actor === phone.deviceId))

    // The old state, should it still be around (a second copy of the app), reads up to the re-join, learns it was
    // replaced and stays out: it does not re-join in turn, so two copies cannot push each other out for ever.
    const epoch = await epochOf(agent.client, conversationId)
    const old = await phone.secure.sync(conversationId)
    const replaced = old.find((e) => e.kind === 'members-changed')
    assert.equal(replaced?.kind === 'members-changed' && replaced.removedSelf, true)
    assert.deepEqual(texts(old), ['sent while the phone had no state'])
    assert.ok(
      old.filter((e) => e.kind === 'unreadable').every((e) => e.kind === 'unreadable' && e.reason === 'removed'),
    )
    assert.equal(await epochOf(agent.client, conversationId), epoch)
  })

  test('a device that crashed after its commit was accepted applies it from the log; one behind a lost commit re-joins', async () => {
    const { conversationId, agent, phone, agentClient } = await secureConversation(server, bank)
    const tablet = await enrolPhone(server, bank, 'tablet')
    await agentClient.addMember(conversationId, { kind: 'device', id: tablet.deviceId })
    let crashAfterCommit = false
    const crashing = await openMember(phone.client, (inner) => ({
      ...inner,
      async submitCommit(id, commit) {
        const accepted = await inner.submitCommit(id, commit)
        if (crashAfterCommit) throw new Error('the app died before storing the new state')
        return accepted
      },
    }))
    // The phone's identity moved to this instance: it re-joins on first use, then commits and "dies".
    assert.deepEqual(joinedBy(await crashing.secure.sync(conversationId)), ['external-commit'])
    crashAfterCommit = true
    await assert.rejects(crashing.secure.addMembers(conversationId, [{ kind: 'device', id: tablet.deviceId }]))
    crashAfterCommit = false
    await agent.secure.send(conversationId, 'after the commit the phone did not store')
    const applied = await crashing.secure.sync(conversationId)
    assert.deepEqual(texts(applied), ['after the commit the phone did not store'])
    assert.deepEqual(joinedBy(applied), [])

    // A commit the log no longer holds (as if purged): the phone's state is behind it for good.
    await agent.secure.removeMembers(conversationId, [{ kind: 'device', id: tablet.deviceId }])
    const lastSeq = async () =>
      Number(
        (
          await server.ctx.db
            .selectFrom('messages')
            .select((eb) => eb.fn.max('seq').as('seq'))
            .where('conversation_id', '=', conversationId)
            .executeTakeFirstOrThrow()
        ).seq,
      )
    const lost = await lastSeq()
    await agent.secure.send(conversationId, 'after the commit the log lost')
    await server.ctx.db
      .deleteFrom('messages')
      .where('conversation_id', '=', conversationId)
      .where('seq', '=', String(lost))
      .execute()
    const events = await crashing.secure.sync(conversationId)
    assert.deepEqual(
      events.map((e) => (e.kind === 'unreadable' ? e.reason : e.kind)),
      ['future-epoch', 'joined'],
    )
    await agent.secure.send(conversationId, 'and after the re-join')
    assert.deepEqual(texts(await crashing.secure.sync(conversationId)), ['and after the re-join'])
  })

  test('two devices re-joining at once: one external commit wins, the other re-bases on the GroupInfo it published', async () => {
    const { conversationId, agent, phone, agentClient } = await secureConversation(server, bank)
    const tablet = await enrolPhone(server, bank, 'tablet')
    await agentClient.addMember(conversationId, { kind: 'device', id: tablet.deviceId })
    await agent.secure.addMembers(conversationId, [{ kind: 'device', id: tablet.deviceId }])
    const before = await epochOf(agentClient, conversationId)
    // Both lost their stores; each holds its first external commit until the other has made its own.
    let arrived = 0
    let release: () => void = () => {}
    const bothMade = new Promise<void>((resolve) => {
      release = resolve
    })
    let conflicts = 0
    const racing = (inner: DeliveryService): DeliveryService => {
      let first = true
      return {
        ...inner,
        async submitCommit(id, commit) {
          if (first) {
            first = false
            if (++arrived === 2) release()
            await bothMade
          }
          try {
            return await inner.submitCommit(id, commit)
          } catch (error) {
            if (isEpochConflict(error)) conflicts++
            throw error
          }
        },
      }
    }
    const phoneAgain = await openMember(phone.client, racing)
    const tabletAgain = await openMember(tablet.client, racing)
    const [phoneEvents, tabletEvents] = await Promise.all([
      phoneAgain.secure.sync(conversationId),
      tabletAgain.secure.sync(conversationId),
    ])
    assert.deepEqual([joinedBy(phoneEvents), joinedBy(tabletEvents)], [['external-commit'], ['external-commit']])
    assert.equal(conflicts, 1, 'exactly one of the two was late and re-based')
    assert.equal(await epochOf(agentClient, conversationId), before + 2)
    assert.deepEqual(
      rejoinedIds(await agent.secure.sync(conversationId)).sort(),
      [`device:${phone.deviceId}`, `device:${tablet.deviceId}`].sort(),
    )
    await agent.secure.send(conversationId, 'both of you are back')
    assert.deepEqual(texts(await phoneAgain.secure.sync(conversationId)), ['both of you are back'])
    assert.deepEqual(texts(await tabletAgain.secure.sync(conversationId)), ['both of you are back'])
    const read = await eventually(
      () => archivedTexts(conversationId),
      (t) => t.includes('both of you are back'),
    )
    assert.deepEqual(read, ['both of you are back'])
  })

  test('external commits from a non-member, with another principal’s credential or leaf, or forged, are refused', async () => {
    const { conversationId, agent, phone, agentClient } = await secureConversation(server, bank)
    const groupInfo = await groupInfoOf(agentClient, conversationId)
    const epoch = await epochOf(agentClient, conversationId)
    // A genuine re-join of the phone, made by hand: the server takes it from the phone only.
    const phoneRejoin = await SecureGroup.joinExternal(await handMadeMember(phone.client), groupInfo)

    // A device of the same customer that is not in the conversation: the conversation does not exist for it.
    const outsider = await enrolPhone(server, bank, 'outsider')
    await assert.rejects(
      outsider.client.request('GET', `/v1/conversations/${conversationId}/e2e/group-info`),
      (e: StrongroomError) => e.status === 404,
    )
    await assert.rejects(submit(outsider.client, conversationId, phoneRejoin), (e: StrongroomError) => e.status === 404)
    // A supervisor may read every conversation but is not a member of this one: no re-joining it.
    const supervisor = await bank.staffToken('supervisor')
    const supervisorClient = new StaffClient({
      baseUrl: server.url,
      credentials: new StaffToken(supervisor.token),
    })
    await assert.rejects(
      submit(supervisorClient, conversationId, phoneRejoin),
      (e: StrongroomError) => e.type === `${PROBLEMS}e2e/rejoin-refused` && e.status === 403,
    )
    // A member of the conversation with no leaf in the group: not with the phone's credential, nor in its place.
    const tablet = await enrolPhone(server, bank, 'tablet')
    await agentClient.addMember(conversationId, { kind: 'device', id: tablet.deviceId })
    await assert.rejects(
      submit(tablet.client, conversationId, phoneRejoin),
      (e: StrongroomError) => e.type === `${PROBLEMS}e2e/rejoin-refused`,
    )
    const inPhonesPlace = await externalCommitReplacing(
      await handMadeMember(tablet.client),
      groupInfo,
      `device:${phone.deviceId}`,
    )
    await assert.rejects(
      submit(tablet.client, conversationId, { commit: inPhonesPlace, groupInfo: phoneRejoin.groupInfo }),
      (e: StrongroomError) => e.type === `${PROBLEMS}e2e/rejoin-refused`,
    )
    // The phone itself, with a credential the authority never signed.
    const { privateKey: rogueKey } = await generateKeyPair('EdDSA')
    const forger = await handMadeMember(phone.client, {
      key: rogueKey,
      member: { kind: 'device', id: phone.deviceId, customerId: bank.customerId },
    })
    const forged = await SecureGroup.joinExternal(forger, groupInfo)
    await assert.rejects(
      submit(phone.client, conversationId, forged),
      (e: StrongroomError) => e.type === `${PROBLEMS}e2e/rejoin-refused`,
    )
    assert.equal(await epochOf(agentClient, conversationId), epoch, 'nothing got in')
    const refusals = (await audited('e2e.rejoin', 'failure')).map((a) => a.actor)
    for (const actor of [supervisor.staffId, tablet.deviceId, phone.deviceId]) assert.ok(refusals.includes(actor))

    // Were the delivery service to relay the forged one anyway, the members refuse it themselves and read on.
    await server.ctx.db.transaction().execute((trx) =>
      appendInTransaction(trx, {
        tenantId: bank.tenantId,
        conversationId,
        sender: { kind: 'device', id: phone.deviceId },
        clientMessageId: 'relayed-forgery',
        contentType: MLS_CONTENT_TYPE,
        ciphertext: Buffer.from(forged.commit),
        expiresAt: null,
      }),
    )
    const atAgent = await agent.secure.sync(conversationId)
    assert.deepEqual(
      atAgent.map((e) => (e.kind === 'unreadable' ? e.reason : e.kind)),
      ['invalid-message'],
    )
    assert.deepEqual(rejoinedIds(atAgent), [])
    // And the genuine one goes through, from the phone.
    await submit(phone.client, conversationId, phoneRejoin)
    assert.equal(await epochOf(agentClient, conversationId), epoch + 1)
    assert.deepEqual(rejoinedIds(await agent.secure.sync(conversationId)), [`device:${phone.deviceId}`])
  })

  test('with no GroupInfo to re-join from, the device asks and the archive member re-adds it', async () => {
    const { conversationId, agent, phone, agentClient } = await secureConversation(server, bank)
    // A group from before GroupInfos were published.
    await server.ctx.db
      .updateTable('e2e_groups')
      .set({ group_info: null })
      .where('conversation_id', '=', conversationId)
      .execute()
    await assert.rejects(
      agentClient.request('GET', `/v1/conversations/${conversationId}/e2e/group-info`),
      (e: StrongroomError) => e.type === `${PROBLEMS}e2e/no-group-info` && e.status === 404,
    )
    // The re-add publishes a GroupInfo again, from which the phone could as well re-join by itself, racing the
    // welcome; it is kept from it here so that the welcome is what brings it back.
    const reinstalled = await openMember(phone.client, (inner) => ({ ...inner, groupInfo: async () => undefined }))
    await agent.secure.send(conversationId, 'while the phone had no state')
    assert.deepEqual(kinds(await reinstalled.secure.sync(conversationId)), ['rejoin-requested'])
    // The archive member re-adds it with a fresh key package (the reinstalled phone replaced its old ones).
    const joined = await eventually(
      () => reinstalled.secure.sync(conversationId),
      (events) => events.some((e) => e.kind === 'joined'),
    )
    assert.deepEqual(joinedBy(joined), ['welcome'])
    assert.deepEqual(rejoinedIds(await agent.secure.sync(conversationId)), [`device:${phone.deviceId}`])
    await agent.secure.send(conversationId, 'after the re-add')
    assert.deepEqual(texts(await reinstalled.secure.sync(conversationId)), ['after the re-add'])
    await reinstalled.secure.send(conversationId, 'the phone again')
    assert.deepEqual(texts(await agent.secure.sync(conversationId)), ['the phone again'])
    const read = await eventually(
      () => archivedTexts(conversationId),
      (t) => t.length >= 3,
    )
    assert.deepEqual(read, ['while the phone had no state', 'after the re-add', 'the phone again'])
    assert.deepEqual(
      await server.ctx.db
        .selectFrom('e2e_readd_requests')
        .selectAll()
        .where('conversation_id', '=', conversationId)
        .execute(),
      [],
    )
  })

  test('a member the group never had (a new phone) asks and the archive member adds it; a non-member is refused', async () => {
    const { conversationId, agent, agentClient } = await secureConversation(server, bank)
    const outsider = await enrolPhone(server, bank, 'outsider')
    await assert.rejects(
      outsider.client.request('POST', `/v1/conversations/${conversationId}/e2e/readd-requests`),
      (e: StrongroomError) => e.status === 404,
    )
    // The customer's new phone joins the conversation after its group was made: it has no leaf to re-join in place
    // of, so it asks to be added, and the archive member adds it in a commit every member sees.
    const tablet = await enrolPhone(server, bank, 'tablet')
    await agentClient.addMember(conversationId, { kind: 'device', id: tablet.deviceId })
    const epoch = await epochOf(agentClient, conversationId)
    await agent.secure.send(conversationId, 'before the tablet')
    assert.deepEqual(kinds(await tablet.secure.sync(conversationId)), ['rejoin-requested'])
    const joined = await eventually(
      () => tablet.secure.sync(conversationId),
      (events) => events.some((e) => e.kind === 'joined'),
    )
    // By the archive's welcome, or (when the tablet looked between the archive's commit and its welcome) by external
    // commit in place of the leaf that commit gave it: either way once, after the archive added it.
    assert.equal(joinedBy(joined).length, 1)
    assert.ok(['welcome', 'external-commit'].includes(joinedBy(joined)[0] as string))
    assert.ok((await epochOf(agentClient, conversationId)) > epoch)
    const seen = (await agent.secure.sync(conversationId)).flatMap((e) =>
      e.kind === 'members-changed' ? e.added.map((m) => `${m.kind}:${m.id}`) : [],
    )
    assert.deepEqual(seen, [`device:${tablet.deviceId}`])
    assert.deepEqual(texts(joined), [], 'what was sent before it was added stays unreadable to it')
    await agent.secure.send(conversationId, 'welcome, tablet')
    assert.deepEqual(texts(await tablet.secure.sync(conversationId)), ['welcome, tablet'])
    // A device taken out of the conversation (revoked, or a transferred agent) is never added back.
    await server.ctx.db
      .deleteFrom('conversation_members')
      .where('conversation_id', '=', conversationId)
      .where('member_id', '=', tablet.deviceId)
      .execute()
    await assert.rejects(
      tablet.client.request('POST', `/v1/conversations/${conversationId}/e2e/readd-requests`),
      (e: StrongroomError) => e.status === 404,
    )
  })
})

describe('the archive member after its own stored state was lost', () => {
  test('on restart it re-joins every group by external commit, audited, and archives what follows; where it cannot, it says so', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'strongroom-archive-lost-'))
    const testDatabase = await createTestDatabase()
    // One database across both runs of the server, as a bank's would be.
    const database = await openDatabase(loadConfig({}, { dataDir, databaseUrl: testDatabase.url }), { inMemory: true })
    const archived: ArchiveRecord[] = []
    const archivedTexts = (conversationId: string) =>
      archived.flatMap((r) =>
        r.kind === 'message' && r.conversationId === conversationId ? [new TextDecoder().decode(r.plaintext)] : [],
      )
    const start = (port: number) =>
      startTestServer({ dataDir, keyFile: path.join(dataDir, 'keyring.json'), port }, testDatabase, {
        database,
        archiveSink: (record) => void archived.push(record),
      })
    let server = await start(0)
    try {
      const bank = await createTestBank(server)
      const first = await secureConversation(server, bank)
      const second = await secureConversation(server, bank)
      const blind = await secureConversation(server, bank)
      for (const c of [first, second, blind]) {
        await c.agent.secure.send(c.conversationId, 'before the loss')
        assert.deepEqual(texts(await c.phone.secure.sync(c.conversationId)), ['before the loss'])
      }
      await eventually(
        () => [first, second, blind].map((c) => archivedTexts(c.conversationId).length),
        (counts) => counts.every((n) => n === 1),
      )

      // The archive member's store is lost while the node is down (erased, or restored from a backup without it); one
      // group has no GroupInfo to re-join from.
      await server.stop()
      await database.db.deleteFrom('archive_member_state').where('tenant_id', '=', bank.tenantId).execute()
      await database.db
        .updateTable('e2e_groups')
        .set({ group_info: null })
        .where('conversation_id', '=', blind.conversationId)
        .execute()
      server = await start(Number(new URL(server.url).port))
      await server.archiveMember?.idle()

      // Every member sees the archive come back in place of its leaf, and it reads what follows.
      for (const c of [first, second]) {
        assert.deepEqual(rejoinedIds(await c.agent.secure.sync(c.conversationId)), ['archive:archive'])
        assert.deepEqual(rejoinedIds(await c.phone.secure.sync(c.conversationId)), ['archive:archive'])
        await c.agent.secure.send(c.conversationId, 'after the re-join')
        await c.phone.secure.send(c.conversationId, 'the phone, after the re-join')
      }
      for (const c of [first, second]) {
        const read = await eventually(
          () => archivedTexts(c.conversationId),
          (t) => t.length >= 3,
        )
        assert.deepEqual(read, ['before the loss', 'after the re-join', 'the phone, after the re-join'])
      }
      const audited = await database.db
        .selectFrom('audit_events')
        .select(['target_id', 'outcome', 'reason'])
        .where('tenant_id', '=', bank.tenantId)
        .where('action', '=', 'e2e.archive.rejoin')
        .execute()
      const outcomeOf = (conversationId: string) =>
        audited.filter((a) => a.target_id === conversationId).map((a) => a.outcome)
      assert.deepEqual(outcomeOf(first.conversationId), ['success'])
      assert.deepEqual(outcomeOf(second.conversationId), ['success'])

      // Without a GroupInfo nobody can bring the archive back: audited, counted, and the conversation goes on.
      assert.deepEqual(outcomeOf(blind.conversationId), ['failure'])
      const metrics = await (await fetch(`${server.url}/metrics`)).text()
      assert.match(metrics, /strongroom_archive_member_failures_total\{reason="cannot-rejoin"\} [1-9]/)
      await blind.agent.secure.send(blind.conversationId, 'the archive cannot read this')
      assert.deepEqual(texts(await blind.phone.secure.sync(blind.conversationId)), ['the archive cannot read this'])
      await server.archiveMember?.idle()
      assert.deepEqual(archivedTexts(blind.conversationId), ['before the loss'])
      // It tries again with each message (a commit may publish a GroupInfo), but reports the conversation once.
      const failures = await database.db
        .selectFrom('audit_events')
        .select('id')
        .where('action', '=', 'e2e.archive.rejoin')
        .where('target_id', '=', blind.conversationId)
        .execute()
      assert.equal(failures.length, 1)
    } finally {
      await server.stop()
      await database.close()
      await testDatabase.drop()
      rmSync(dataDir, { recursive: true, force: true })
    }
  })
})
