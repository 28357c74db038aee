import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  type DeviceClient,
  enrolDevice,
  type MemberClient,
  type Message,
  type MessageStream,
  StaffClient,
  StaffToken,
  type StrongroomError,
} from '@strongroom/sdk'
import WebSocket from 'ws'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'
const bytes = (text: string) => new TextEncoder().encode(text)

/** Everything a staff member's stream hears, and a way to wait for something in it. */
function follow(client: MemberClient) {
  const heard: { kind: 'message' | 'joined' | 'left'; conversationId: string; seq?: number }[] = []
  const waiters: (() => void)[] = []
  const note = (event: (typeof heard)[number]) => {
    heard.push(event)
    for (const waiter of waiters.splice(0)) waiter()
  }
  const stream: MessageStream = client.stream({
    onMessage: (m: Message) => note({ kind: 'message', conversationId: m.conversationId, seq: m.seq }),
    onJoined: (conversationId) => note({ kind: 'joined', conversationId }),
    onLeft: (conversationId) => note({ kind: 'left', conversationId }),
  })
  const until = (wanted: (event: (typeof heard)[number]) => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => (heard.some(wanted) ? resolve() : waiters.push(check))
      check()
    })
  return { stream, heard, until }
}

describe('supervisors reassign and transfer conversations', () => {
  let server: TestServer
  let bank: TestBank
  let supervisor: StaffClient
  let agentA: StaffClient
  let agentB: StaffClient
  let agentBId: string
  let phone: DeviceClient
  const staff = (token: string) =>
    new StaffClient({ baseUrl: server.url, credentials: new StaffToken(token), WebSocket: WebSocket as never })

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    supervisor = staff((await bank.staffToken('supervisor', 'Sam Supervisor')).token)
    agentA = staff(bank.agentToken)
    const b = await bank.staffToken('agent', 'Bea Agent')
    agentB = staff(b.token)
    agentBId = b.staffId
    phone = (
      await enrolDevice({
        baseUrl: server.url,
        enrolmentCode: await bank.enrolmentCode(),
        label: 'Phone',
        WebSocket: WebSocket as never,
      })
    ).client
  })
  after(() => server.stop())

  const conversationOfA = () =>
    agentA.createConversation({ customerId: bank.customerId, assignedStaffId: bank.agentId })
  const staffMembers = async (conversationId: string) =>
    (await supervisor.getConversation(conversationId)).members
      .filter((m) => m.kind === 'staff')
      .map((m) => m.id)
      .sort()
  const audited = async (action: string, conversationId: string) => {
    await server.flushAudit()
    return server.ctx.db
      .selectFrom('audit_events')
      .select(['actor_id', 'details'])
      .where('tenant_id', '=', bank.tenantId)
      .where('action', '=', action)
      .where('target_id', '=', conversationId)
      .execute()
  }

  test('a supervisor sees the staff to choose from', async () => {
    const names = (await supervisor.listStaff()).map((s) => `${s.name}:${s.role}`)
    assert.ok(names.includes('Bea Agent:agent'))
    assert.ok(names.includes('agent:agent'))
  })

  test('reassign: the new agent is assigned and joins live; the previous one stays a member', async () => {
    const conversation = await conversationOfA()
    const b = follow(agentB)
    try {
      await b.stream.ready()
      const assigned = await supervisor.assignConversation(conversation.id, { staffId: agentBId, mode: 'reassign' })
      assert.equal(assigned.assignedStaffId, agentBId)
      await b.until((e) => e.kind === 'joined' && e.conversationId === conversation.id)
      assert.deepEqual(await staffMembers(conversation.id), [bank.agentId, agentBId].sort())
      assert.ok((await agentA.listConversations()).some((c) => c.id === conversation.id))
      const [record] = await audited('conversation.reassign', conversation.id)
      assert.deepEqual(JSON.parse(record?.details ?? '{}'), { from: bank.agentId, to: agentBId })
    } finally {
      b.stream.close()
    }
  })

  test('transfer: the previous agent leaves at once, live, and hears nothing more of it', async () => {
    const conversation = await conversationOfA()
    await phone.sendMessage(conversation.id, { contentType: 'text/plain', ciphertext: bytes('before') })
    const a = follow(agentA)
    const b = follow(agentB)
    try {
      await Promise.all([a.stream.ready(), b.stream.ready()])
      await a.until((e) => e.kind === 'message' && e.conversationId === conversation.id)
      await supervisor.assignConversation(conversation.id, { staffId: agentBId, mode: 'transfer' })
      await a.until((e) => e.kind === 'left' && e.conversationId === conversation.id)
      assert.deepEqual(await staffMembers(conversation.id), [agentBId])

      const after = await phone.sendMessage(conversation.id, { contentType: 'text/plain', ciphertext: bytes('after') })
      await b.until((e) => e.kind === 'message' && e.seq === after.seq)
      assert.equal(
        a.heard.some((e) => e.kind === 'message' && e.seq === after.seq),
        false,
        'the transferred agent is not sent what comes after',
      )
      await assert.rejects(
        a.stream.send(conversation.id, { contentType: 'text/plain', ciphertext: bytes('still here?') }),
        (e: StrongroomError) => e.problem.type === `${PROBLEMS}request/not-found`,
      )
      await assert.rejects(agentA.getConversation(conversation.id), (e: StrongroomError) => e.status === 404)
      assert.equal(
        (await agentA.listConversations()).some((c) => c.id === conversation.id),
        false,
      )
      assert.equal((await audited('conversation.transfer', conversation.id)).length, 1)
    } finally {
      a.stream.close()
      b.stream.close()
    }
  })

  test('refusals: an agent may not assign; nobody may assign to compliance (not even a new conversation), unknown staff or another bank', async () => {
    const conversation = await conversationOfA()
    const refused = async (promise: Promise<unknown>, status: number, type: string) =>
      assert.rejects(promise, (e: StrongroomError) => e.status === status && e.problem.type === PROBLEMS + type)
    await refused(
      agentA.assignConversation(conversation.id, { staffId: agentBId, mode: 'transfer' }),
      403,
      'auth/forbidden',
    )
    const officer = await bank.staffToken('compliance')
    await refused(
      supervisor.assignConversation(conversation.id, { staffId: officer.staffId, mode: 'reassign' }),
      400,
      'request/invalid',
    )
    // Nor at the start: a new conversation is not assigned to someone who cannot answer it.
    await refused(
      agentA.createConversation({ customerId: bank.customerId, assignedStaffId: officer.staffId }),
      400,
      'request/invalid',
    )
    await refused(
      supervisor.assignConversation(conversation.id, { staffId: 'stf_0000000000000000000000', mode: 'reassign' }),
      404,
      'request/not-found',
    )
    const other = await createTestBank(server, 'Other Bank')
    const otherSupervisor = staff((await other.staffToken('supervisor')).token)
    await refused(
      otherSupervisor.assignConversation(conversation.id, { staffId: agentBId, mode: 'reassign' }),
      404,
      'request/not-found',
    )
    await refused(
      supervisor.assignConversation(conversation.id, { staffId: agentBId, mode: 'steal' as never }),
      400,
      'request/invalid',
    )
    // A deactivated agent can take nothing: neither a conversation handed over nor a new one, nor a seat in one.
    const gone = await bank.staffToken('agent', 'Dee Parted')
    const admin = staff(bank.adminToken)
    await admin.request('POST', `/v1/staff/${gone.staffId}/deactivate`, {})
    await assert.rejects(
      supervisor.assignConversation(conversation.id, { staffId: gone.staffId, mode: 'transfer' }),
      (e: StrongroomError) => e.status === 400 && /Dee Parted is deactivated/.test(e.problem.detail ?? ''),
    )
    await refused(
      supervisor.createConversation({ customerId: bank.customerId, assignedStaffId: gone.staffId }),
      400,
      'request/invalid',
    )
    await assert.rejects(
      staff(bank.agentToken).addMember(conversation.id, { kind: 'staff', id: gone.staffId }),
      (e: StrongroomError) =>
        e.status === 400 && e.problem.detail === 'Dee Parted is deactivated and cannot join conversations',
    )
    assert.equal((await supervisor.listStaff()).find((s) => s.id === gone.staffId)?.active, false)
    assert.deepEqual(await staffMembers(conversation.id), [bank.agentId])
    assert.equal((await supervisor.getConversation(conversation.id)).assignedStaffId, bank.agentId)
  })

  test('the conversation list pages with `before`, each conversation once', async () => {
    const fresh = await createTestBank(server, 'Paging Bank')
    const agent = staff(fresh.agentToken)
    const made: string[] = []
    for (let i = 0; i < 5; i++) made.push((await agent.createConversation({ customerId: fresh.customerId })).id)
    const seen: string[] = []
    for (let page = await agent.listConversations({ limit: 2 }); page.length > 0; ) {
      seen.push(...page.map((c) => c.id))
      page = await agent.listConversations({ limit: 2, before: page.at(-1)?.id as string })
    }
    assert.equal(seen.length, 5)
    assert.deepEqual([...seen].sort(), [...made].sort())
    await assert.rejects(
      agent.listConversations({ before: 'cnv_0000000000000000000000' }),
      (e: StrongroomError) => e.status === 400,
    )
  })

  test('a supervisor lists every conversation of the bank, in pages, to find one to hand over; an agent may not', async () => {
    const fresh = await createTestBank(server, 'Team Bank')
    const agents = [staff(fresh.agentToken), staff((await fresh.staffToken('agent', 'Second Agent')).token)]
    const made: string[] = []
    for (let i = 0; i < 5; i++) {
      made.push((await (agents[i % 2] as StaffClient).createConversation({ customerId: fresh.customerId })).id)
    }
    const teamLead = staff((await fresh.staffToken('supervisor', 'Team Lead')).token)
    assert.deepEqual(await teamLead.listConversations(), [], 'a member of none of them')
    const seen: string[] = []
    for (let page = await teamLead.listConversations({ scope: 'all', limit: 2 }); page.length > 0; ) {
      seen.push(...page.map((c) => c.id))
      page = await teamLead.listConversations({ scope: 'all', limit: 2, before: page.at(-1)?.id as string })
    }
    assert.equal(seen.length, made.length, 'each once')
    assert.deepEqual([...seen].sort(), [...made].sort(), 'every one, and none of another bank')
    await assert.rejects(
      (agents[0] as StaffClient).listConversations({ scope: 'all' }),
      (e: StrongroomError) => e.status === 403,
    )
  })
})
