import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  base64ToBytes,
  bytesToBase64,
  enrolDevice,
  type MemberClient,
  StaffClient,
  StaffToken,
  type StrongroomError,
} from '@strongroom/sdk'
import { mlsCredential, nodeCryptoProvider } from '@strongroom/sdk/mls-node'
import { base64url } from 'jose'
import { sql } from 'kysely'
import {
  defaultCapabilities,
  encodeMlsMessage,
  generateKeyPackageWithKey,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
} from 'ts-mls'
import { eventually } from '../testing/eventually.ts'
import { createTestBank, type TestBank, type TestServer } from '../testing/harness.ts'
import {
  enrolPhone as enrolPhoneIn,
  openMember,
  secureConversation as secureConversationIn,
  startArchivingServer,
  texts,
} from '../testing/secure-members.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'

describe('end-to-end encrypted conversations (MLS) over the real server', () => {
  let server: TestServer
  let bank: TestBank
  let archivedTexts: (conversationId: string) => string[]

  before(async () => {
    ;({ server, bank, archivedTexts } = await startArchivingServer())
  })
  after(() => server.stop())

  const enrolPhone = (label: string) => enrolPhoneIn(server, bank, label)
  const secureConversation = () => secureConversationIn(server, bank)

  test('customer device, agent and archive exchange messages; the server and its database see only ciphertext', async () => {
    const { conversationId, agent, phone } = await secureConversation()
    assert.deepEqual((await phone.secure.members(conversationId)).map((m) => m.kind).sort(), [
      'archive',
      'device',
      'staff',
    ])
    await phone.secure.send(conversationId, 'My card 4111 1111 1111 1111 was stolen')
    await agent.secure.send(conversationId, 'Blocked. A new card is on its way.')
    assert.deepEqual(texts(await agent.secure.sync(conversationId)), ['My card 4111 1111 1111 1111 was stolen'])
    assert.deepEqual(texts(await phone.secure.sync(conversationId)), ['Blocked. A new card is on its way.'])

    const read = await eventually(
      () => archivedTexts(conversationId),
      (t) => t.length >= 2,
    )
    assert.deepEqual(read, ['My card 4111 1111 1111 1111 was stolen', 'Blocked. A new card is on its way.'])
    await server.archiveMember?.idle()

    // No plaintext anywhere the server keeps things: search every text, JSON and bytea column of every table.
    const { rows: columns } = await sql<{ table_name: string; column_name: string; data_type: string }>`
      select table_name, column_name, data_type from information_schema.columns
      where table_schema = current_schema() and data_type in ('text', 'bytea', 'jsonb')`.execute(server.ctx.db)
    assert.ok(columns.some((c) => c.table_name === 'messages' && c.column_name === 'ciphertext'))
    const occurrences = async (needle: string) => {
      const places: string[] = []
      for (const { table_name, column_name, data_type } of columns) {
        const column = sql.ref(column_name)
        const found =
          data_type === 'bytea'
            ? sql<boolean>`position(${Buffer.from(needle)}::bytea in ${column}) > 0`
            : sql<boolean>`position(${needle} in ${column}::text) > 0`
        const { rows: hits } = await sql<{ n: number }>`
          select count(*)::int as n from ${sql.table(table_name)} where ${found}`.execute(server.ctx.db)
        if ((hits[0]?.n ?? 0) > 0) places.push(`${table_name}.${column_name}`)
      }
      return places
    }
    // The search finds what is stored in clear (the bank's name), so finding nothing below means something.
    assert.deepEqual(await occurrences('Test Bank'), ['tenants.name'])
    for (const needle of ['4111 1111 1111 1111', 'new card is on its way']) {
      assert.deepEqual(await occurrences(needle), [], `"${needle}" is stored in clear`)
      // Nor in the devices' stores: the group state there is sealed with a non-extractable key.
      for (const value of [...phone.raw.values(), ...agent.raw.values()]) {
        assert.ok(!Buffer.from(value).includes(needle))
      }
    }
  })

  test('a second device of the customer is added, sees the members and reads what follows', async () => {
    const { conversationId, agent, phone, agentClient } = await secureConversation()
    const tablet = await enrolPhone('tablet')
    await agentClient.addMember(conversationId, { kind: 'device', id: tablet.deviceId })
    await agent.secure.addMembers(conversationId, [{ kind: 'device', id: tablet.deviceId }])
    assert.deepEqual(await tablet.secure.acceptWelcomes(), [conversationId])
    const changes = (await phone.secure.sync(conversationId)).filter((e) => e.kind === 'members-changed')
    assert.deepEqual(
      changes.flatMap((e) => (e.kind === 'members-changed' ? e.added.map((m) => m.id) : [])),
      [tablet.deviceId],
      'every member sees who was added',
    )
    await agent.secure.send(conversationId, 'Hello on both devices')
    assert.deepEqual(texts(await tablet.secure.sync(conversationId)), ['Hello on both devices'])
    assert.deepEqual(texts(await phone.secure.sync(conversationId)), ['Hello on both devices'])
  })

  test('a removed device reads nothing sent after its removal', async () => {
    const { conversationId, agent, phone } = await secureConversation()
    await agent.secure.send(conversationId, 'before removal')
    assert.deepEqual(texts(await phone.secure.sync(conversationId)), ['before removal'])
    await agent.secure.removeMembers(conversationId, [{ kind: 'device', id: phone.deviceId }])
    await agent.secure.send(conversationId, 'after removal: your new PIN')
    // Even with the ciphertext in hand (say, copied off the wire), the removed device cannot read it.
    const events = await phone.secure.sync(conversationId)
    const removal = events.find((e) => e.kind === 'members-changed')
    assert.equal(removal?.kind === 'members-changed' && removal.removedSelf, true)
    assert.deepEqual(texts(events), [])
    assert.deepEqual(
      events.filter((e) => e.kind === 'unreadable').map((e) => (e.kind === 'unreadable' ? e.reason : '')),
      ['removed'],
    )
    const read = await eventually(
      () => archivedTexts(conversationId),
      (t) => t.length >= 2,
    )
    assert.deepEqual(read, ['before removal', 'after removal: your new PIN'])
  })

  const epochOf = async (client: MemberClient, conversationId: string) =>
    (await client.request<{ epoch: number }>('GET', `/v1/conversations/${conversationId}/e2e/group`)).epoch

  test('a revoked device is removed from its groups by the archive at once; the others read on', async () => {
    const { conversationId, agent, phone, agentClient } = await secureConversation()
    const before = await epochOf(agentClient, conversationId)
    await agentClient.revokeDevice(phone.deviceId, 'reported lost')
    assert.equal(
      await eventually(
        () => epochOf(agentClient, conversationId),
        (epoch) => epoch > before,
      ),
      before + 1,
    )
    await agent.secure.sync(conversationId)
    const removal = agent.events.find((e) => e.kind === 'members-changed' && e.removed.length > 0)
    assert.deepEqual(removal?.kind === 'members-changed' && removal.removed.map((m) => `${m.kind}:${m.id}`), [
      `device:${phone.deviceId}`,
    ])
    assert.ok(!(await agent.secure.members(conversationId)).some((m) => m.id === phone.deviceId))
    await agent.secure.send(conversationId, 'after the revocation')
    const read = await eventually(
      () => archivedTexts(conversationId),
      (t) => t.includes('after the revocation'),
    )
    assert.deepEqual(read, ['after the revocation'])
  })

  test('a suspended device stays in its groups; resumed, it reads what was sent meanwhile', async () => {
    const { conversationId, agent, phone, agentClient } = await secureConversation()
    const before = await epochOf(agentClient, conversationId)
    await agentClient.suspendDevice(phone.deviceId, 'mislaid')
    await agent.secure.send(conversationId, 'while you were away')
    await server.archiveMember?.idle()
    assert.equal(await epochOf(agentClient, conversationId), before)
    assert.ok((await agent.secure.members(conversationId)).some((m) => m.id === phone.deviceId))
    await assert.rejects(phone.secure.sync(conversationId), (e: StrongroomError) =>
      e.type.endsWith('/identity/device-suspended'),
    )
    await agentClient.resumeDevice(phone.deviceId, 'found')
    assert.deepEqual(texts(await phone.secure.sync(conversationId)), ['while you were away'])
  })

  test('two commits racing for one epoch: the first wins, the second re-bases and lands in the next', async () => {
    const { conversationId, agent, phone, agentClient } = await secureConversation()
    const tablet = await enrolPhone('tablet')
    await agentClient.addMember(conversationId, { kind: 'device', id: tablet.deviceId })
    const laptop = await enrolPhone('laptop')
    await agentClient.addMember(conversationId, { kind: 'device', id: laptop.deviceId })
    const before = await agentClient.request<{ epoch: number }>('GET', `/v1/conversations/${conversationId}/e2e/group`)
    // The phone and the agent each add a device at the same epoch.
    await Promise.all([
      phone.secure.addMembers(conversationId, [{ kind: 'device', id: tablet.deviceId }]),
      agent.secure.addMembers(conversationId, [{ kind: 'device', id: laptop.deviceId }]),
    ])
    const afterRace = await agentClient.request<{ epoch: number }>(
      'GET',
      `/v1/conversations/${conversationId}/e2e/group`,
    )
    assert.equal(afterRace.epoch, before.epoch + 2)
    assert.deepEqual(await tablet.secure.acceptWelcomes(), [conversationId])
    assert.deepEqual(await laptop.secure.acceptWelcomes(), [conversationId])
    await phone.secure.send(conversationId, 'all five of us')
    for (const reader of [agent, tablet, laptop]) {
      assert.deepEqual(texts(await reader.secure.sync(conversationId)), ['all five of us'])
    }
  })

  test('a device offline across several epochs catches up and reads everything in order', async () => {
    const { conversationId, agent, phone, agentClient } = await secureConversation()
    for (let i = 0; i < 3; i++) {
      const extra = await enrolPhone(`extra-${i}`)
      await agentClient.addMember(conversationId, { kind: 'device', id: extra.deviceId })
      await agent.secure.addMembers(conversationId, [{ kind: 'device', id: extra.deviceId }])
      await agent.secure.send(conversationId, `epoch message ${i}`)
    }
    // The phone was away for all of it; sending first makes it catch up (its epoch is stale), reading on the way.
    await phone.secure.send(conversationId, 'back online')
    await phone.secure.sync(conversationId)
    assert.deepEqual(texts(phone.events), ['epoch message 0', 'epoch message 1', 'epoch message 2'])
    assert.deepEqual(texts(await agent.secure.sync(conversationId)), ['back online'])
  })

  test('the delivery service refuses stale epochs, plaintext, foreign groups and commits without the archive', async () => {
    const { conversationId, agent, phone, agentClient } = await secureConversation()
    const group = await agentClient.request<{ epoch: number; groupId: string }>(
      'GET',
      `/v1/conversations/${conversationId}/e2e/group`,
    )
    // Plaintext into an encrypted conversation.
    await assert.rejects(
      phone.client.sendMessage(conversationId, {
        contentType: 'text/plain',
        ciphertext: new TextEncoder().encode('hi'),
      }),
      (e: StrongroomError) => e.type === `${PROBLEMS}e2e/encryption-required` && e.status === 409,
    )
    // Garbage claiming to be MLS.
    await assert.rejects(
      phone.client.sendMessage(conversationId, { contentType: 'message/mls', ciphertext: new Uint8Array([1, 2, 3]) }),
      (e: StrongroomError) => e.type === `${PROBLEMS}e2e/malformed-message`,
    )
    // A commit for an epoch that has passed gets the current one back.
    const stale = await agentClient.request<{ messages: { ciphertext: string; contentType: string }[] }>(
      'GET',
      `/v1/conversations/${conversationId}/messages`,
    )
    const firstCommit = stale.messages.find((m) => m.contentType === 'message/mls')
    await assert.rejects(
      agentClient.request('POST', `/v1/conversations/${conversationId}/e2e/commits`, {
        clientMessageId: 'replayed-commit',
        commit: firstCommit?.ciphertext,
      }),
      (e: StrongroomError) =>
        e.type === `${PROBLEMS}e2e/epoch-conflict` && e.status === 409 && e.problem.currentEpoch === group.epoch,
    )
    // Another conversation's group cannot be registered twice.
    await assert.rejects(
      agentClient.request('PUT', `/v1/conversations/${conversationId}/e2e/group`, {
        groupId: bytesToBase64(new Uint8Array(32)),
        cipherSuite: 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519',
      }),
      (e: StrongroomError) => e.type === `${PROBLEMS}e2e/group-exists`,
    )
    // A group whose first commit leaves the archive out is refused.
    const other = await agentClient.createConversation({ customerId: bank.customerId, deviceIds: [phone.deviceId] })
    await assert.rejects(
      agent.secure.createGroup(other.id, [{ kind: 'device', id: phone.deviceId }]),
      (e: StrongroomError) => e.type === `${PROBLEMS}e2e/archive-required`,
    )
    // Nobody can claim an outsider's key packages into a conversation.
    const outsider = await enrolPhone('outsider')
    await assert.rejects(
      agentClient.request('POST', `/v1/conversations/${conversationId}/e2e/key-packages/claim`, {
        members: [{ kind: 'device', id: outsider.deviceId }],
      }),
      (e: StrongroomError) => e.status === 404,
    )
  })

  // Issue 14: a commit removing the archive was accepted and only audited afterwards.
  test('a commit removing the archive is refused and audited; the group goes on without it applied', async () => {
    const { conversationId, agent, phone } = await secureConversation()
    await assert.rejects(
      agent.secure.removeMembers(conversationId, [{ kind: 'archive', id: 'archive' }]),
      (e: StrongroomError) => e.type === `${PROBLEMS}e2e/archive-removal-refused` && e.status === 403,
    )
    await agent.secure.send(conversationId, 'still archived')
    assert.deepEqual(texts(await phone.secure.sync(conversationId)), ['still archived'])
    assert.ok((await phone.secure.members(conversationId)).some((m) => m.kind === 'archive'))
    const read = await eventually(
      () => archivedTexts(conversationId),
      (t) => t.includes('still archived'),
    )
    assert.ok(read.includes('still archived'))
    const denied = await server.ctx.db
      .selectFrom('audit_events')
      .select(['action', 'reason'])
      .where('tenant_id', '=', bank.tenantId)
      .where('target_id', '=', conversationId)
      .where('outcome', '=', 'denied')
      .execute()
    assert.deepEqual(denied, [{ action: 'e2e.commit', reason: 'e2e/archive-removal-refused' }])
    // Removing someone else still works.
    await agent.secure.removeMembers(conversationId, [{ kind: 'device', id: phone.deviceId }])
  })

  test('only a compliance officer’s exemption lets one commit remove the archive: once, before it expires, audited', async () => {
    const { conversationId, agent } = await secureConversation()
    const exemptions = `/v1/conversations/${conversationId}/e2e/archive-removal-exemptions`
    const reason = 'legal privilege: counsel speaking with the customer'
    const agentClient = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    await assert.rejects(agentClient.request('POST', exemptions, { reason }), (e: StrongroomError) => e.status === 403)
    const compliance = new StaffClient({
      baseUrl: server.url,
      credentials: new StaffToken((await bank.staffToken('compliance')).token),
    })
    await assert.rejects(
      compliance.request('POST', exemptions, { reason: 'short' }),
      (e: StrongroomError) => e.status === 400,
    )
    // Another bank's compliance officer cannot grant one for this bank's conversation: in their bank it has no group.
    const otherBank = await createTestBank(server, 'Exempting Bank')
    const otherOfficer = new StaffClient({
      baseUrl: server.url,
      credentials: new StaffToken((await otherBank.staffToken('compliance')).token),
    })
    await assert.rejects(
      otherOfficer.request('POST', exemptions, { reason }),
      (e: StrongroomError) => e.type === `${PROBLEMS}e2e/no-group`,
    )
    // An expired exemption lets nothing through.
    const expired = await compliance.request<{ id: string }>('POST', exemptions, { reason })
    await server.ctx.db
      .updateTable('archive_removal_exemptions')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('id', '=', expired.id)
      .execute()
    const removeArchive = () => agent.secure.removeMembers(conversationId, [{ kind: 'archive', id: 'archive' }])
    await assert.rejects(removeArchive(), (e: StrongroomError) => e.type === `${PROBLEMS}e2e/archive-removal-refused`)

    const granted = await compliance.request<{ id: string; expiresAt: string }>('POST', exemptions, { reason })
    assert.ok(Date.parse(granted.expiresAt) > Date.now())
    await removeArchive()
    assert.ok(!(await agent.secure.members(conversationId)).some((m) => m.kind === 'archive'))
    const used = await server.ctx.db
      .selectFrom('archive_removal_exemptions')
      .select(['id', 'used_at'])
      .where('conversation_id', '=', conversationId)
      .where('used_at', 'is not', null)
      .execute()
    assert.deepEqual(
      used.map((u) => u.id),
      [granted.id],
    )
    const audited = await server.ctx.db
      .selectFrom('audit_events')
      .select(['action', 'actor_kind', 'outcome'])
      .where('target_id', '=', conversationId)
      .where('action', 'like', 'e2e.archive-removal.%')
      .orderBy('id')
      .execute()
    assert.deepEqual(
      audited.map((a) => `${a.action} ${a.actor_kind} ${a.outcome}`),
      [
        'e2e.archive-removal.grant staff success',
        'e2e.archive-removal.grant staff success',
        'e2e.archive-removal.use staff success',
      ],
    )
  })

  // Issue 14: plaintext was accepted in any conversation without an MLS group.
  test('a conversation marked secure refuses plaintext, and MLS before its group exists; an unmarked one does not', async () => {
    const { phone, agentClient } = await secureConversation()
    const marked = await agentClient.request<{ id: string }>('POST', '/v1/conversations', {
      customerId: bank.customerId,
      deviceIds: [phone.deviceId],
      encryptionRequired: true,
    })
    const plaintext = { contentType: 'text/plain', ciphertext: new TextEncoder().encode('my PIN is 1234') }
    await assert.rejects(
      phone.client.sendMessage(marked.id, plaintext),
      (e: StrongroomError) =>
        e.type === `${PROBLEMS}e2e/encryption-required` &&
        e.status === 409 &&
        e.problem.detail === 'the conversation is marked secure and its MLS group is not made yet',
    )
    // Remembered or not, the second refusal is the same.
    await assert.rejects(agentClient.sendMessage(marked.id, plaintext), (e: StrongroomError) => e.status === 409)
    await assert.rejects(
      phone.client.sendMessage(marked.id, { contentType: 'message/mls', ciphertext: new Uint8Array([0, 1]) }),
      (e: StrongroomError) => e.type === `${PROBLEMS}e2e/no-group`,
    )
    const { n } = await server.ctx.db
      .selectFrom('messages')
      .select(({ fn }) => fn.countAll<number>().as('n'))
      .where('conversation_id', '=', marked.id)
      .executeTakeFirstOrThrow()
    assert.equal(Number(n), 0)
    const unmarked = await agentClient.createConversation({ customerId: bank.customerId, deviceIds: [phone.deviceId] })
    assert.equal((await phone.client.sendMessage(unmarked.id, plaintext)).seq, 1)
  })

  test('tampered ciphertext is reported as unreadable and passed over; the conversation goes on', async () => {
    const { conversationId, agent, phone } = await secureConversation()
    const sent = await agent.secure.send(conversationId, 'genuine')
    const tampered = base64ToBytes(sent.ciphertext)
    tampered[tampered.length - 5] = (tampered[tampered.length - 5] as number) ^ 0x01
    // A framing-valid message with a flipped ciphertext bit, sent by a member (the server cannot tell).
    await agent.client.sendMessage(conversationId, { contentType: 'message/mls', ciphertext: tampered })
    await agent.secure.send(conversationId, 'still genuine')
    const events = await phone.secure.sync(conversationId)
    assert.deepEqual(texts(events), ['genuine', 'still genuine'])
    assert.deepEqual(
      events.filter((e) => e.kind === 'unreadable').map((e) => (e.kind === 'unreadable' ? e.reason : '')),
      ['invalid-message'],
    )
  })

  test('key packages: uploads are checked against the uploader’s credential, claims consume them, last resort stays', async () => {
    const phone = await enrolPhone('kp-phone')
    const stock = await phone.client.request<{ available: number; lastResort: boolean; low: boolean }>(
      'GET',
      '/v1/e2e/key-packages',
    )
    assert.deepEqual(stock, { available: 20, lastResort: true, low: false })
    // Someone else's key package, uploaded as the phone's own, is refused.
    const agentClient = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const conversation = await agentClient.createConversation({
      customerId: bank.customerId,
      assignedStaffId: bank.agentId,
      deviceIds: [phone.deviceId],
    })
    const claimOne = () =>
      agentClient.request<{ keyPackages: { keyPackage: string; ref: string }[] }>(
        'POST',
        `/v1/conversations/${conversation.id}/e2e/key-packages/claim`,
        { members: [{ kind: 'device', id: phone.deviceId }] },
      )
    const claims = await Promise.all(Array.from({ length: 25 }, claimOne))
    const refs = claims.map((c) => c.keyPackages[0]?.ref)
    // 20 distinct packages for 20 claims even when claimed in parallel, then the last-resort one again and again.
    assert.equal(new Set(refs).size, 21)
    const after = await phone.client.request<{ available: number; lastResort: boolean; low: boolean }>(
      'GET',
      '/v1/e2e/key-packages',
    )
    assert.deepEqual(after, { available: 0, lastResort: true, low: true })
    const stolen = claims[0]?.keyPackages[0]?.keyPackage as string
    const tablet = await enrolPhone('kp-tablet')
    await assert.rejects(
      tablet.client.request('POST', '/v1/e2e/key-packages', { keyPackages: [stolen] }),
      (e: StrongroomError) => e.type === `${PROBLEMS}e2e/invalid-key-package`,
    )
    await assert.rejects(
      tablet.client.request('POST', '/v1/e2e/key-packages', { keyPackages: ['AAAA'] }),
      (e: StrongroomError) => e.type === `${PROBLEMS}e2e/malformed-message`,
    )
  })

  test('key packages live at most 90 days: longer, expired or future ones are refused, and ageing ones renewed', async () => {
    const phone = await enrolPhone('kp-lifetimes')
    type Stock = { available: number; lastResort: boolean; low: boolean }
    const stock = () => phone.client.request<Stock>('GET', '/v1/e2e/key-packages')
    const suite = await getCiphersuiteImpl(
      getCiphersuiteFromName('MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'),
      nodeCryptoProvider,
    )
    const signatureKey = await suite.signature.keygen()
    const { credential } = await phone.client.request<{ credential: string }>('POST', '/v1/e2e/credentials', {
      signaturePublicKey: base64url.encode(signatureKey.publicKey),
    })
    const DAY = 86_400
    /** A key package valid from `from` to `to`, in seconds from now. */
    const living = async (from: number, to: number) => {
      const now = Math.floor(Date.now() / 1000)
      const lifetime = { notBefore: BigInt(now + from), notAfter: BigInt(now + to) }
      const made = await generateKeyPackageWithKey(
        mlsCredential(credential),
        defaultCapabilities(),
        lifetime,
        [],
        signatureKey,
        suite,
      )
      const message = { version: 'mls10', wireformat: 'mls_key_package', keyPackage: made.publicPackage } as const
      return bytesToBase64(encodeMlsMessage(message))
    }
    const upload = async (keyPackages: string[]) =>
      phone.client.request<Stock>('POST', '/v1/e2e/key-packages', { keyPackages })
    for (const [from, to, why] of [
      [0, 365 * DAY, /at most 90 days/],
      [-DAY, 0x7fffffff, /at most 90 days/],
      [-80 * DAY, -DAY, /not valid now/],
      [DAY, 30 * DAY, /not valid now/],
    ] as const) {
      await assert.rejects(
        upload([await living(from, to)]),
        (e: StrongroomError) => e.type === `${PROBLEMS}e2e/invalid-key-package` && why.test(e.message),
      )
    }
    assert.deepEqual(await stock(), { available: 20, lastResort: true, low: false })
    assert.deepEqual(await upload([await living(-3600, 90 * DAY)]), { available: 21, lastResort: true, low: false })

    // Eighty days on (the app not opened since), nothing has a month left: the stock says to renew, claims still work.
    const own = server.ctx.db
      .updateTable('e2e_key_packages')
      .where('owner_id', '=', phone.deviceId)
      .where('claimed_at', 'is', null)
    await own.set({ expires_at: new Date(Date.now() + 10 * DAY * 1000) }).execute()
    assert.deepEqual(await stock(), { available: 0, lastResort: false, low: true })
    const agentClient = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const conversation = await agentClient.createConversation({
      customerId: bank.customerId,
      assignedStaffId: bank.agentId,
      deviceIds: [phone.deviceId],
    })
    const claim = () =>
      agentClient.request<{ keyPackages: unknown[] }>(
        'POST',
        `/v1/conversations/${conversation.id}/e2e/key-packages/claim`,
        { members: [{ kind: 'device', id: phone.deviceId }] },
      )
    assert.equal((await claim()).keyPackages.length, 1)
    // Past their lifetime, none is handed out, the last-resort one included.
    await own.set({ expires_at: new Date(Date.now() - 60_000) }).execute()
    await assert.rejects(claim(), (e: StrongroomError) => e.type === `${PROBLEMS}e2e/no-key-package`)
    // The app opens again and tops up; the expired packages leave the directory.
    await phone.secure.replenishKeyPackages()
    assert.deepEqual(await stock(), { available: 20, lastResort: true, low: false })
    const expired = await server.ctx.db
      .selectFrom('e2e_key_packages')
      .select('id')
      .where('owner_id', '=', phone.deviceId)
      .where('expires_at', '<=', new Date())
      .execute()
    assert.deepEqual(expired, [])
    assert.equal((await claim()).keyPackages.length, 1)

    // The archive's packages age too, however long no group was made: it tops up before one is claimed.
    await secureConversation()
    await server.ctx.db
      .updateTable('e2e_key_packages')
      .where('tenant_id', '=', bank.tenantId)
      .where('owner_kind', '=', 'archive')
      .where('claimed_at', 'is', null)
      .set({ expires_at: new Date(Date.now() - 60_000) })
      .execute()
    const { conversationId, agent } = await secureConversation()
    assert.ok((await agent.secure.members(conversationId)).some((m) => m.kind === 'archive'))
  })

  test('a member that never opened secure messaging is left out when optional and stops the group when required', async () => {
    // An agent of their own: the welcome is for this member's key packages, not those of earlier tests' members.
    const staff = await bank.staffToken('agent')
    const agentClient = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(staff.token) })
    const agent = await openMember(agentClient)
    const phone = await enrolPhone('optional-phone')
    const bare = await enrolDevice({ baseUrl: server.url, enrolmentCode: await bank.enrolmentCode(), label: 'bare' })
    const conversation = await agentClient.createConversation({
      customerId: bank.customerId,
      assignedStaffId: staff.staffId,
      deviceIds: [phone.deviceId, bare.device.id],
    })
    // Required: refused before any group exists, so another member can still make one.
    await assert.rejects(
      phone.secure.createGroup(conversation.id, [
        { kind: 'device', id: bare.device.id },
        { kind: 'archive', id: 'archive' },
      ]),
      (e: StrongroomError) => e.type === `${PROBLEMS}e2e/no-key-package`,
    )
    await assert.rejects(
      phone.client.request('GET', `/v1/conversations/${conversation.id}/e2e/group`),
      (e: StrongroomError) => e.type === `${PROBLEMS}e2e/no-group`,
    )
    await phone.secure.createGroup(
      conversation.id,
      [
        { kind: 'staff', id: staff.staffId },
        { kind: 'archive', id: 'archive' },
      ],
      { ifAvailable: [{ kind: 'device', id: bare.device.id }] },
    )
    assert.deepEqual((await phone.secure.members(conversation.id)).map((m) => `${m.kind}:${m.id}`).sort(), [
      'archive:archive',
      `device:${phone.deviceId}`,
      `staff:${staff.staffId}`,
    ])

    // A message that disappears: its expiry travels with it and comes out with what the reader decrypted.
    assert.deepEqual(await agent.secure.acceptWelcomes(), [conversation.id])
    const expiresAt = new Date(Date.now() + 60_000)
    const sent = await agent.secure.send(conversation.id, 'This code is valid for a minute: 4821', { expiresAt })
    assert.equal(sent.expiresAt, expiresAt.toISOString())
    const [read] = (await phone.secure.sync(conversation.id)).filter((e) => e.kind === 'message')
    assert.deepEqual(read?.kind === 'message' ? [read.text, read.expiresAt] : [], [
      'This code is valid for a minute: 4821',
      expiresAt.toISOString(),
    ])
  })
})
