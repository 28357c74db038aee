import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { StaffClient, StaffToken, StrongroomError } from '@strongroom/sdk'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'

describe('revoking a device', () => {
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

  test('a customer revokes a lost phone from the tablet: the phone is cut off at once, everywhere', async () => {
    const phone = await enrol('phone')
    const tablet = await enrol('tablet')
    const conversation = await agent.createConversation({ customerId: bank.customerId })
    assert.equal(conversation.members.filter((m) => m.kind === 'device').length >= 2, true)

    const phoneStates: string[] = []
    const phoneErrors: string[] = []
    const phoneStream = phone.client.stream({
      onStateChange: (s) => phoneStates.push(s),
      onError: (e) => phoneErrors.push(e.message),
    })
    await phoneStream.ready()

    const mine = await tablet.client.listMyDevices()
    assert.ok(mine.some((d) => d.id === phone.device.id && d.status === 'active'))
    const result = await tablet.client.revokeDevice(phone.device.id, 'lost on the train')
    assert.equal(result.status, 'revoked')
    assert.ok(result.conversationsLeft >= 1)

    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.equal(phoneStream.state, 'closed')
    assert.deepEqual(phoneErrors, ['this device has been revoked'])
    assert.ok(!phoneStates.includes('reconnecting'))

    // Its token, and its key, no longer get it anything.
    await assert.rejects(phone.client.me(), (e) => e instanceof StrongroomError && e.status === 401)
    const after = await agent.getConversation(conversation.id)
    assert.ok(!after.members.some((m) => m.id === phone.device.id))
    const listed = (await agent.listDevices(bank.customerId)).devices.find((d) => d.id === phone.device.id)
    assert.equal(listed?.status, 'revoked')
    // The tablet goes on.
    assert.equal((await tablet.client.me()).deviceId, tablet.device.id)

    await server.flushAudit()
    const audit = await server.ctx.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'device.revoke')
      .where('target_id', '=', phone.device.id)
      .execute()
    assert.deepEqual(
      audit.map((e) => [e.actor_kind, e.actor_id, e.reason]),
      [['device', tablet.device.id, 'lost on the train']],
    )
  })

  test('an agent revokes a device; revoking it again changes nothing', async () => {
    const phone = await enrol('phone')
    await agent.revokeDevice(phone.device.id)
    const again = await agent.revokeDevice(phone.device.id)
    assert.deepEqual(again, { deviceId: phone.device.id, status: 'revoked', conversationsLeft: 0 })
    await server.flushAudit()
    const events = await server.ctx.db
      .selectFrom('audit_events')
      .select('id')
      .where('action', '=', 'device.revoke')
      .where('target_id', '=', phone.device.id)
      .execute()
    assert.equal(events.length, 1)
  })

  test("a device cannot revoke another customer's device, nor another tenant's; a compliance officer cannot at all", async () => {
    const other = await createTestBank(server, 'Other Bank')
    const stranger = await enrol('stranger', other)
    const victim = await enrol('victim')
    for (const attempt of [() => stranger.client.revokeDevice(victim.device.id)]) {
      await assert.rejects(attempt(), (e) => e instanceof StrongroomError && e.status === 404)
    }
    const otherAgent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(other.agentToken) })
    await assert.rejects(
      otherAgent.revokeDevice(victim.device.id),
      (e) => e instanceof StrongroomError && e.status === 404,
    )
    const compliance = await bank.staffToken('compliance')
    const officer = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(compliance.token) })
    await assert.rejects(
      officer.revokeDevice(victim.device.id),
      (e) => e instanceof StrongroomError && e.type === `${PROBLEMS}auth/forbidden`,
    )
    assert.equal((await victim.client.me()).deviceId, victim.device.id)
  })
})
