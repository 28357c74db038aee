import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  DeviceClient,
  enrolDevice,
  type MemberClient,
  type MessageStream,
  StaffClient,
  StaffToken,
  StrongroomError,
} from '@strongroom/sdk'
import { MemoryStore } from '@strongroom/sdk/mls'
import WebSocket from 'ws'
import {
  createTestBank,
  createTestDatabase,
  startTestServer,
  type TestBank,
  type TestServer,
} from '../testing/harness.ts'
import { needsPostgresAndNats } from '../testing/requirements.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'
const bytes = (text: string) => new TextEncoder().encode(text)

const problem = (type: string, status: number) => (error: unknown) =>
  error instanceof StrongroomError && error.type === `${PROBLEMS}${type}` && error.status === status

/** Waits until a stream has stopped for good (the bus tells every node at once), up to five seconds. */
async function closed(stream: MessageStream): Promise<void> {
  const deadline = Date.now() + 5000
  while (stream.state !== 'closed' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
}

/** A device that watches its stream: the errors it reports and whether it ever tried to reconnect. */
function watch(client: MemberClient) {
  const errors: string[] = []
  const states: string[] = []
  const stream = client.stream({ onError: (e) => errors.push(e.message), onStateChange: (s) => states.push(s) })
  return { stream, errors, states }
}

async function auditOf(server: TestServer, deviceId: string) {
  await server.flushAudit()
  return server.ctx.db
    .selectFrom('audit_events')
    .select(['action', 'actor_kind', 'actor_id', 'reason'])
    .where('target_id', '=', deviceId)
    .where('action', 'in', ['device.suspend', 'device.resume', 'device.revoke'])
    .orderBy('id')
    .execute()
}

describe('device states: pending, active, suspended, revoked', () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
  })
  after(() => server.stop())

  const enrol = (label: string, customerBank = bank) => customerBank.enrol(label)

  test('a device is pending from its enrolment code until it enrols, under the id the code reserved', async () => {
    const tablet = await enrol('tablet')
    const issued = await agent.issueEnrolmentCode(bank.customerId)
    const pending = (await agent.listDevices(bank.customerId)).devices.find((d) => d.id === issued.deviceId)
    assert.deepEqual(pending, {
      id: issued.deviceId,
      customerId: bank.customerId,
      kind: 'app',
      label: null,
      status: 'pending',
      keyThumbprint: null,
      createdAt: pending?.createdAt,
      enrolmentExpiresAt: issued.expiresAt,
    })
    // The customer sees from their other device that a device is being added.
    assert.equal((await tablet.client.listMyDevices()).find((d) => d.id === issued.deviceId)?.status, 'pending')

    const phone = await enrolDevice({ baseUrl: server.url, enrolmentCode: issued.code, label: 'phone' })
    assert.equal(phone.device.id, issued.deviceId)
    const enrolled = (await agent.listDevices(bank.customerId)).devices.filter((d) => d.id === issued.deviceId)
    assert.deepEqual(
      enrolled.map((d) => [d.status, d.label, d.keyThumbprint, d.enrolmentExpiresAt]),
      [['active', 'phone', phone.device.keyThumbprint, undefined]],
    )
  })

  test('a pending device nobody expected is revoked from the customer’s other device: its code no longer enrols', async () => {
    const tablet = await enrol('tablet')
    const issued = await agent.issueEnrolmentCode(bank.customerId)
    // Another customer cannot touch it, even knowing its id.
    const other = await createTestBank(server, 'Other Bank')
    const stranger = await enrol('stranger', other)
    await assert.rejects(stranger.client.revokeDevice(issued.deviceId), problem('request/not-found', 404))
    const revoked = await tablet.client.revokeDevice(issued.deviceId, 'I am not adding a phone')
    assert.deepEqual(revoked, { deviceId: issued.deviceId, status: 'revoked', conversationsLeft: 0 })
    assert.equal(
      (await tablet.client.listMyDevices()).find((d) => d.id === issued.deviceId),
      undefined,
    )
    await assert.rejects(
      enrolDevice({ baseUrl: server.url, enrolmentCode: issued.code, label: 'intruder' }),
      problem('identity/invalid-enrolment-code', 400),
    )
    const audit = await auditOf(server, issued.deviceId)
    assert.deepEqual(
      audit.map((a) => [a.action, a.actor_kind, a.reason]),
      [['device.revoke', 'device', 'I am not adding a phone']],
    )
  })

  test('a customer suspends a mislaid phone from the tablet: cut off at once, still in its conversations, nothing wiped; resumed, it reads what it missed', async () => {
    const enrolled = await enrol('phone')
    const store = new MemoryStore()
    await store.set('messages/1', bytes('kept on the phone'))
    const wiped: boolean[] = []
    const phone = new DeviceClient({
      baseUrl: server.url,
      credentials: enrolled.client.credentials,
      WebSocket: WebSocket as never,
      remoteWipe: {
        pinnedKeys: enrolled.wipeKeys ?? { keys: [] },
        device: {
          tenantId: enrolled.tenantId,
          deviceId: enrolled.device.id,
          keyThumbprint: enrolled.device.keyThumbprint,
        },
        stores: [store],
        onRevoked: () => wiped.push(true),
      },
    })
    const tablet = await enrol('tablet')
    const conversation = await agent.createConversation({ customerId: bank.customerId })
    const watched = watch(phone)
    await watched.stream.ready()

    assert.deepEqual(await tablet.client.suspendDevice(enrolled.device.id, "left it at a friend's"), {
      deviceId: enrolled.device.id,
      status: 'suspended',
    })
    await closed(watched.stream)
    assert.equal(watched.stream.state, 'closed')
    assert.deepEqual(watched.errors, ['this device has been suspended'])
    assert.ok(!watched.states.includes('reconnecting'))

    // Every request is refused with the reason; the token renewal the SDK tries gets the same.
    await assert.rejects(phone.me(), problem('identity/device-suspended', 403))
    await assert.rejects(phone.listConversations(), problem('identity/device-suspended', 403))
    // A new stream is told why and does not retry.
    const again = watch(phone)
    await closed(again.stream)
    assert.equal(again.stream.state, 'closed')
    assert.equal(again.errors.length, 1)
    assert.match(again.errors[0] ?? '', /suspended/)
    assert.ok(!again.states.includes('reconnecting'))

    // Nothing erased, nothing removed.
    assert.deepEqual(await store.get('messages/1'), bytes('kept on the phone'))
    assert.deepEqual(wiped, [])
    const members = (await agent.getConversation(conversation.id)).members
    assert.ok(members.some((m) => m.kind === 'device' && m.id === enrolled.device.id))
    assert.equal((await tablet.client.listMyDevices()).find((d) => d.id === enrolled.device.id)?.status, 'suspended')
    const device = await server.ctx.db
      .selectFrom('devices')
      .select(['status', 'wiped_at'])
      .where('id', '=', enrolled.device.id)
      .executeTakeFirstOrThrow()
    assert.deepEqual(device, { status: 'suspended', wiped_at: null })

    const missed = await agent.sendMessage(conversation.id, {
      contentType: 'text/plain',
      ciphertext: bytes('found it?'),
    })

    assert.deepEqual(await tablet.client.resumeDevice(enrolled.device.id, 'found it'), {
      deviceId: enrolled.device.id,
      status: 'active',
    })
    assert.equal((await phone.me()).deviceId, enrolled.device.id)
    const read = await phone.listMessages(conversation.id)
    assert.deepEqual(
      read.map((m) => m.id),
      [missed.id],
    )
    const resumed = watch(phone)
    await resumed.stream.ready()
    assert.equal(resumed.stream.state, 'open')
    resumed.stream.close()

    assert.deepEqual(await auditOf(server, enrolled.device.id), [
      { action: 'device.suspend', actor_kind: 'device', actor_id: tablet.device.id, reason: "left it at a friend's" },
      { action: 'device.resume', actor_kind: 'device', actor_id: tablet.device.id, reason: 'found it' },
    ])
  })

  test('suspending or resuming twice changes nothing; a suspended device can be revoked, and revocation is final', async () => {
    const phone = await enrol('phone')
    await agent.suspendDevice(phone.device.id)
    assert.deepEqual(await agent.suspendDevice(phone.device.id), { deviceId: phone.device.id, status: 'suspended' })
    await agent.resumeDevice(phone.device.id)
    assert.deepEqual(await agent.resumeDevice(phone.device.id), { deviceId: phone.device.id, status: 'active' })
    await agent.suspendDevice(phone.device.id, 'mislaid')
    assert.deepEqual(await agent.revokeDevice(phone.device.id, 'lost after all'), {
      deviceId: phone.device.id,
      status: 'revoked',
      conversationsLeft: 0,
    })
    await assert.rejects(agent.resumeDevice(phone.device.id), problem('identity/device-revoked', 409))
    await assert.rejects(agent.suspendDevice(phone.device.id), problem('identity/device-revoked', 409))
    // The revoked key is answered with its wipe command now, not with the suspension.
    await assert.rejects(phone.client.me(), problem('identity/device-wiped', 401))
    assert.deepEqual(
      (await auditOf(server, phone.device.id)).map((e) => [e.action, e.reason]),
      [
        ['device.suspend', null],
        ['device.resume', null],
        ['device.suspend', 'mislaid'],
        ['device.revoke', 'lost after all'],
      ],
    )
  })

  test('who may: not another customer, not another bank, not a compliance officer, not the suspended device itself', async () => {
    const victim = await enrol('victim')
    const other = await createTestBank(server, 'Other Bank')
    const stranger = await enrol('stranger', other)
    const neighbour = await agent.createCustomer({ externalRef: 'REF-neighbour', displayName: 'Neighbour' })
    const neighbourDevice = await enrolDevice({
      baseUrl: server.url,
      enrolmentCode: (await agent.issueEnrolmentCode(neighbour.id)).code,
      label: 'neighbour',
    })
    const otherAgent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(other.agentToken) })
    for (const client of [stranger.client, neighbourDevice.client, otherAgent]) {
      await assert.rejects(client.suspendDevice(victim.device.id), problem('request/not-found', 404))
      await assert.rejects(client.resumeDevice(victim.device.id), problem('request/not-found', 404))
    }
    const compliance = await bank.staffToken('compliance')
    const officer = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(compliance.token) })
    await assert.rejects(officer.suspendDevice(victim.device.id), problem('auth/forbidden', 403))
    assert.equal((await victim.client.me()).deviceId, victim.device.id)

    await agent.suspendDevice(victim.device.id)
    await assert.rejects(victim.client.resumeDevice(victim.device.id), problem('identity/device-suspended', 403))
    // A pending device has nothing to suspend yet.
    const { deviceId: pending } = await agent.issueEnrolmentCode(bank.customerId)
    await assert.rejects(agent.suspendDevice(pending), problem('request/not-found', 404))
    assert.deepEqual(
      (await auditOf(server, victim.device.id)).map((e) => e.action),
      ['device.suspend'],
    )
  })
})

describe('a suspension on one node reaches the sockets of every other', {
  skip: needsPostgresAndNats(),
}, () => {
  test('suspended through one node, the phone loses its socket on the other; resumed, it is back there', async () => {
    const database = await createTestDatabase()
    const a = await startTestServer({}, database)
    const b = await startTestServer(
      { keyFile: a.config.keyFile, archiveKeyFile: a.config.archiveKeyFile, archiveMember: false },
      database,
    )
    try {
      const bank = await createTestBank(a)
      const agent = new StaffClient({ baseUrl: a.url, credentials: new StaffToken(bank.agentToken) })
      const phone = await bank.enrol('phone', { baseUrl: b.url })
      const watched = watch(phone.client)
      await watched.stream.ready()
      await agent.suspendDevice(phone.device.id)
      await closed(watched.stream)
      assert.deepEqual(watched.errors, ['this device has been suspended'])
      await assert.rejects(phone.client.me(), problem('identity/device-suspended', 403))
      await agent.resumeDevice(phone.device.id)
      assert.equal((await phone.client.me()).deviceId, phone.device.id)
    } finally {
      await b.stop()
      await a.stop()
      await database.drop()
    }
  })
})
