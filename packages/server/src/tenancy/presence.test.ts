/**
 * Issue #20: agents' presence for supervisors. Available while a console is connected, away when the agent says so
 * (audited), offline when the last console closes; told over the stream to the bank's staff who assign conversations,
 * and to nobody of another bank. So are staff added, deactivated or made active again (their consoles' staff lists).
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type MessageStream, StaffClient, StaffToken, StrongroomError } from '@strongroom/sdk'
import WebSocket from 'ws'
import { eventually } from '../testing/eventually.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { forgetGoneConnections } from './presence.ts'

const clientOf = (server: TestServer, token: string) =>
  new StaffClient({ baseUrl: server.url, credentials: new StaffToken(token), WebSocket: WebSocket as never })

describe('staff presence', () => {
  let server: TestServer
  let bank: TestBank
  let otherBank: TestBank
  let supervisor: StaffClient
  let supervisorStream: MessageStream
  let otherSupervisorStream: MessageStream
  const told: string[] = []
  const toldOtherBank: string[] = []
  const staffTold: string[] = []
  const staffToldOtherBank: string[] = []

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server, 'Presence Bank')
    otherBank = await createTestBank(server, 'Other Presence Bank')
    supervisor = clientOf(server, (await bank.staffToken('supervisor', 'sue')).token)
    supervisorStream = supervisor.stream({
      onPresence: (staffId) => void told.push(staffId),
      onStaffChanged: (staffId) => void staffTold.push(staffId),
    })
    const otherSupervisor = clientOf(server, (await otherBank.staffToken('supervisor', 'sam')).token)
    otherSupervisorStream = otherSupervisor.stream({
      onPresence: (staffId) => void toldOtherBank.push(staffId),
      onStaffChanged: (staffId) => void staffToldOtherBank.push(staffId),
    })
    await Promise.all([supervisorStream.ready(), otherSupervisorStream.ready()])
  })
  after(async () => {
    supervisorStream?.close()
    otherSupervisorStream?.close()
    await server?.stop()
  })

  const presenceOf = async (staffId: string) =>
    (await supervisor.listStaffPresence()).find((p) => p.staffId === staffId)?.presence

  test('an agent is offline, available while a console is connected, away when they say so, offline when it closes', async () => {
    assert.equal(await presenceOf(bank.agentId), 'offline')
    const agent = clientOf(server, bank.agentToken)
    const first = agent.stream()
    const second = agent.stream()
    await Promise.all([first.ready(), second.ready()])
    assert.equal(
      await eventually(
        () => presenceOf(bank.agentId),
        (p) => p === 'available',
      ),
      'available',
    )
    await eventually(async () => told.includes(bank.agentId), Boolean)

    told.length = 0
    await agent.setAway(true)
    assert.equal(await presenceOf(bank.agentId), 'away')
    await eventually(async () => told.includes(bank.agentId), Boolean)
    // Said twice, recorded once.
    await agent.setAway(true)
    await server.flushAudit()
    const audited = await server.ctx.db
      .selectFrom('audit_events')
      .select(['action', 'actor_id', 'target_id'])
      .where('tenant_id', '=', bank.tenantId)
      .where('action', 'like', 'staff.presence.%')
      .execute()
    assert.deepEqual(audited, [{ action: 'staff.presence.away', actor_id: bank.agentId, target_id: bank.agentId }])

    // One of two consoles closes: still there; the last closes: offline, and still away when back.
    first.close()
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.equal(await presenceOf(bank.agentId), 'away')
    second.close()
    assert.equal(
      await eventually(
        () => presenceOf(bank.agentId),
        (p) => p === 'offline',
      ),
      'offline',
    )
    const third = agent.stream()
    await third.ready()
    assert.equal(
      await eventually(
        () => presenceOf(bank.agentId),
        (p) => p === 'away',
      ),
      'away',
    )
    await agent.setAway(false)
    assert.equal(await presenceOf(bank.agentId), 'available')
    third.close()
  })

  test("a dead node's rows, three refreshes old, read as offline and are swept; supervisors are told", async () => {
    await eventually(
      () => presenceOf(bank.agentId),
      (p) => p === 'offline',
    )
    told.length = 0
    const gone = new Date(Date.now() - 10 * 60_000)
    await server.ctx.db
      .insertInto('staff_connections')
      .values({ tenant_id: bank.tenantId, staff_id: bank.agentId, node_id: 'crashed-node', seen_at: gone })
      .execute()
    assert.equal(await presenceOf(bank.agentId), 'offline')
    // What every node does three times a refresh (here called rather than waited for).
    await forgetGoneConnections(server.ctx)
    const left = await server.ctx.db.selectFrom('staff_connections').select('node_id').execute()
    assert.equal(
      left.some((r) => r.node_id === 'crashed-node'),
      false,
    )
    await eventually(async () => told.includes(bank.agentId), Boolean)
  })

  test('a staff member added, deactivated and made active again: the bank’s supervisors are told each time', async () => {
    const admin = clientOf(server, bank.adminToken)
    const { id } = await admin.request<{ id: string }>('POST', '/v1/staff', { name: 'nia', role: 'agent' })
    const toldOfNia = (times: number) =>
      eventually(
        async () => staffTold.filter((s) => s === id).length,
        (n) => n === times,
      )
    await toldOfNia(1)
    await admin.request('POST', `/v1/staff/${id}/deactivate`)
    await toldOfNia(2)
    // Deactivated twice: nothing changed, nothing told (the next thing told, another member added, comes first).
    await admin.request('POST', `/v1/staff/${id}/deactivate`)
    const other = await admin.request<{ id: string }>('POST', '/v1/staff', { name: 'zed', role: 'supervisor' })
    await eventually(async () => staffTold.includes(other.id), Boolean)
    assert.deepEqual(staffTold.slice(-3), [id, id, other.id])
    await admin.request('POST', `/v1/staff/${id}/activate`)
    await toldOfNia(3)
    assert.equal(staffToldOtherBank.includes(id), false)
  })

  test('another bank hears nothing and sees only its own staff; an agent may not read presence', async () => {
    assert.equal(toldOtherBank.includes(bank.agentId), false)
    const otherSupervisor = clientOf(server, (await otherBank.staffToken('supervisor')).token)
    const seen = (await otherSupervisor.listStaffPresence()).map((p) => p.staffId)
    assert.equal(seen.includes(bank.agentId), false)
    assert.ok(seen.includes(otherBank.agentId))
    const refused = await clientOf(server, bank.agentToken)
      .listStaffPresence()
      .catch((e: unknown) => e)
    assert.ok(refused instanceof StrongroomError && refused.status === 403)
  })
})
