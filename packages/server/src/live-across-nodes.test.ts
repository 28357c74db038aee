/**
 * Everything live, across nodes. A bank runs several nodes behind a load balancer with no stickiness: a customer's
 * phone may be on node A while the agent's console is on node B. Each check below is what a user sees over the SDK's
 * stream, with the two ends on different nodes of one PostgreSQL and one NATS. The other checks of the same kind live
 * beside what they test: a suspension (`identity/suspend-device.test.ts`), a staff deactivation or token revocation
 * (`tenancy/staff-lifecycle.test.ts`), guesses spread over two nodes (`limits/rate-limits.test.ts`), messages while
 * nodes are killed (`conversations/cluster.test.ts`).
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, describe, test } from 'node:test'
import {
  type ConversationUpdate,
  DeviceClient,
  enrolDevice,
  type MemberClient,
  type Message,
  type ReceivedSignal,
  StaffClient,
  StaffToken,
  StrongroomError,
} from '@strongroom/sdk'
import { MemoryStore } from '@strongroom/sdk/mls'
import WebSocket from 'ws'
import { strongroomFromSource } from './testing/cli.ts'
import { eventually } from './testing/eventually.ts'
import { createTestBank, startTwoNodes, type TestBank, type TestServer } from './testing/harness.ts'
import { needsPostgresAndNats } from './testing/requirements.ts'
import { openMember } from './testing/secure-members.ts'
import { testKeyProvider } from './testing/softhsm.ts'

/** Presence refreshed every second here (30 s by default): a node that dies is forgotten in seconds, not minutes. */
const PRESENCE_REFRESH_MS = 1000
const CUSTOMER_PHONE = '+447700900321'
const BANK_NUMBER = '+442071838751'

/** A client's stream, and everything it was told, in order, with when each arrived (`performance.now()`). */
function watch(client: MemberClient) {
  const told = {
    arrived: [] as { what: string; at: number }[],
    presence: [] as string[],
    updates: [] as { conversationId: string | null; update: ConversationUpdate }[],
    joined: [] as string[],
    left: [] as string[],
    signals: [] as ReceivedSignal[],
    messages: [] as Message[],
    errors: [] as string[],
  }
  const arrived = (what: string) => void told.arrived.push({ what, at: performance.now() })
  const stream = client.stream({
    onPresence: (staffId) => {
      arrived('presence')
      told.presence.push(staffId)
    },
    onUpdate: (conversationId, update) => {
      arrived(`${update.kind} update`)
      told.updates.push({ conversationId, update })
    },
    onJoined: (conversationId) => void told.joined.push(conversationId),
    onLeft: (conversationId) => void told.left.push(conversationId),
    onSignal: (signal) => {
      arrived('signal')
      told.signals.push(signal)
    },
    onMessage: (message) => void told.messages.push(message),
    onError: (error) => void told.errors.push(error instanceof StrongroomError ? error.type : error.message),
  })
  return { stream, ...told }
}

/** How long after `since` the stream was first told `what`: what a user on the other node waits. */
const measured: string[] = []
function measure(watched: ReturnType<typeof watch>, what: string, since: number): void {
  const first = watched.arrived.find((a) => a.what === what && a.at >= since)
  assert.ok(first, `${what} arrived`)
  measured.push(`${what} ${(first.at - since).toFixed(0)} ms`)
}

const updatesOf = (watched: ReturnType<typeof watch>, kind: ConversationUpdate['kind']) =>
  watched.updates.filter((u) => u.update.kind === kind)

describe('live across nodes: one end on node A, the other on node B', { skip: needsPostgresAndNats() }, () => {
  let nodes: Awaited<ReturnType<typeof startTwoNodes>>
  let a: TestServer
  let b: TestServer
  let bank: TestBank
  const streams: { close(): void }[] = []
  const staff = (node: { url: string }, token: string) =>
    new StaffClient({ baseUrl: node.url, credentials: new StaffToken(token), WebSocket: WebSocket as never })
  const opened = async (client: MemberClient) => {
    const watched = watch(client)
    streams.push(watched.stream)
    await watched.stream.ready()
    return watched
  }

  /** A new conversation of the bank's customer, given to its agent, with one of the customer's devices in it. */
  const conversationWith = async (client: StaffClient, deviceId: string) =>
    (
      await client.createConversation({
        customerId: bank.customerId,
        assignedStaffId: bank.agentId,
        deviceIds: [deviceId],
      })
    ).id

  /** A third node, as a process of its own so that it can be killed; it starts while the other tests run. */
  let dyingNode: Promise<{ url: string; process: ChildProcess }>
  let dyingNodeDir: string

  before(async () => {
    nodes = await startTwoNodes({ presenceRefreshMs: PRESENCE_REFRESH_MS, publicUrl: 'https://bank.example' })
    ;({ a, b } = nodes)
    dyingNodeDir = mkdtempSync(path.join(os.tmpdir(), 'sr-dying-node-'))
    dyingNode = startNodeProcess({
      DATABASE_URL: nodes.databaseUrl,
      NATS_URL: process.env.NATS_URL,
      STRONGROOM_DATA_DIR: dyingNodeDir,
      STRONGROOM_KEY_FILE: a.config.keyFile,
      STRONGROOM_ARCHIVE_MEMBER: 'false',
      STRONGROOM_PRESENCE_REFRESH_MS: String(PRESENCE_REFRESH_MS),
    })
    // Awaited by its test; a start that fails before then is not an unhandled rejection.
    dyingNode.catch(() => undefined)
    bank = await createTestBank(a, 'Two Node Bank')
  })
  after(async () => {
    // From the call on one node (its answer included) to the event on the other's stream.
    console.log(`across nodes, from the call to the other end's stream: ${measured.join(', ')}`)
    for (const stream of streams) stream.close()
    await dyingNode?.then((node) => node.process.kill('SIGKILL')).catch(() => undefined)
    await nodes?.stop()
    if (dyingNodeDir) rmSync(dyingNodeDir, { recursive: true, force: true })
  })

  test('presence: an agent on node A is available, then away, then offline, live for a supervisor on node B', async () => {
    const supervisor = staff(b, (await bank.staffToken('supervisor', 'sue')).token)
    const watching = await opened(supervisor)
    const presenceOf = async (staffId: string) =>
      (await supervisor.listStaffPresence()).find((p) => p.staffId === staffId)?.presence
    const agent = await bank.staffToken('agent', 'amir')
    assert.equal(await presenceOf(agent.staffId), 'offline')

    const agentClient = staff(a, agent.token)
    const agentConsole = await opened(agentClient)
    await eventually(() => watching.presence.includes(agent.staffId), Boolean)
    assert.equal(await presenceOf(agent.staffId), 'available')

    // The console has been in use (its connection open, its token known to the node) before the agent steps away.
    watching.presence.length = 0
    await agentClient.setAway(false)
    await eventually(() => watching.presence.includes(agent.staffId), Boolean)
    assert.equal(await presenceOf(agent.staffId), 'available')
    watching.presence.length = 0
    const awayAt = performance.now()
    await agentClient.setAway(true)
    await eventually(() => watching.presence.includes(agent.staffId), Boolean)
    assert.equal(await presenceOf(agent.staffId), 'away')
    measure(watching, 'presence', awayAt)

    watching.presence.length = 0
    agentConsole.stream.close()
    await eventually(() => watching.presence.includes(agent.staffId), Boolean)
    assert.equal(await presenceOf(agent.staffId), 'offline')
  })

  test('presence: a live node whose rows were swept while it could not write puts them back, and the supervisor is told', async () => {
    const supervisor = staff(b, (await bank.staffToken('supervisor', 'sol')).token)
    const watching = await opened(supervisor)
    const presenceOf = async (staffId: string) =>
      (await supervisor.listStaffPresence()).find((p) => p.staffId === staffId)?.presence
    const agent = await bank.staffToken('agent', 'ali')
    await opened(staff(a, agent.token))
    // The supervisor is told of the console first (so that this word is not taken for the one awaited below).
    await eventually(() => watching.presence.includes(agent.staffId), Boolean)
    assert.equal(await presenceOf(agent.staffId), 'available')
    // What another node's sweep does to node A's rows when A's database writes stalled for three refreshes. (Not read
    // as offline here: A's next refresh may already have put them back.)
    watching.presence.length = 0
    await a.ctx.db.deleteFrom('staff_connections').where('staff_id', '=', agent.staffId).execute()
    await eventually(() => watching.presence.includes(agent.staffId), Boolean)
    assert.equal(await presenceOf(agent.staffId), 'available')
  })

  test('typing and read indicators from a phone on node A reach the agent on node B, and back', async () => {
    // The agent's requests reach node A, as round robin may send them, and its stream is on node B. (Node A runs the
    // archive member: a group made through it does not wait on the bus for the archive's first key packages, a wait
    // that a machine loaded by several of these files at once can make longer than its 5 s.)
    const agentClient = staff(a, bank.agentToken)
    const enrolled = await bank.enrol('indicator phone', { baseUrl: a.url })
    const agent = await openMember(agentClient)
    const phone = await openMember(enrolled.client)
    const conversationId = await conversationWith(agentClient, enrolled.device.id)
    await agent.secure.createGroup(conversationId, [
      { kind: 'device', id: enrolled.device.id },
      { kind: 'archive', id: 'archive' },
    ])
    assert.deepEqual(await phone.secure.acceptWelcomes(), [conversationId])
    const agentConsole = await opened(staff(b, bank.agentToken))
    const phoneApp = await opened(enrolled.client)
    agent.secure.sendOver(agentConsole.stream)
    phone.secure.sendOver(phoneApp.stream)

    const first = await agent.secure.send(conversationId, 'Hello from node B')
    const delivered = await eventually(() => phoneApp.messages.find((m) => m.seq === first.seq), Boolean)
    await phone.secure.receive(delivered as Message)

    // Phone (A) → agent (B): typing, then read.
    const typedAt = performance.now()
    assert.equal(await phone.secure.signal(conversationId, { kind: 'typing' }), true)
    const typing = await eventually(() => agentConsole.signals.at(-1), Boolean)
    assert.deepEqual((await agent.secure.readSignal(typing as ReceivedSignal))?.signal, { kind: 'typing' })
    measure(agentConsole, 'signal', typedAt)
    assert.equal(await phone.secure.signal(conversationId, { kind: 'read', seq: first.seq, messageId: first.id }), true)
    const read = await eventually(() => agentConsole.signals[1], Boolean)
    assert.deepEqual((await agent.secure.readSignal(read as ReceivedSignal))?.signal, {
      kind: 'read',
      seq: first.seq,
      messageId: first.id,
    })
    assert.deepEqual(read?.sender, { kind: 'device', id: enrolled.device.id })

    // Agent (B) → phone (A): typing, then read of the phone's reply.
    const reply = await phone.secure.send(conversationId, 'Hello from node A')
    assert.equal(await agent.secure.signal(conversationId, { kind: 'typing' }), true)
    const agentTyping = await eventually(() => phoneApp.signals.at(-1), Boolean)
    assert.deepEqual((await phone.secure.readSignal(agentTyping as ReceivedSignal))?.signal, { kind: 'typing' })
    assert.equal(await agent.secure.signal(conversationId, { kind: 'read', seq: reply.seq, messageId: reply.id }), true)
    const agentRead = await eventually(() => phoneApp.signals[1], Boolean)
    assert.deepEqual((await phone.secure.readSignal(agentRead as ReceivedSignal))?.signal, {
      kind: 'read',
      seq: reply.seq,
      messageId: reply.id,
    })
    assert.deepEqual(agentRead?.sender, { kind: 'staff', id: bank.agentId })

    // The stored read marker, moved through node A, is what node B reads.
    await enrolled.client.markRead(conversationId, first.seq)
    const members = (await staff(b, bank.agentToken).getConversation(conversationId)).members
    assert.equal(members.find((m) => m.kind === 'device' && m.id === enrolled.device.id)?.readSeq, first.seq)
  })

  test('an assignment made on node A: the new agent on node B joins and hears it, a transferred agent on node B leaves', async () => {
    const supervisor = staff(a, (await bank.staffToken('supervisor', 'sid')).token)
    const first = await bank.staffToken('agent', 'first')
    const second = await bank.staffToken('agent', 'second')
    const conversation = await supervisor.createConversation({
      customerId: bank.customerId,
      assignedStaffId: first.staffId,
    })
    const firstConsole = await opened(staff(b, first.token))
    const secondConsole = await opened(staff(b, second.token))

    const assignedAt = performance.now()
    await supervisor.assignConversation(conversation.id, { staffId: second.staffId, mode: 'transfer' })
    await eventually(
      () => secondConsole.joined.includes(conversation.id) && updatesOf(secondConsole, 'assignment').length > 0,
      Boolean,
    )
    assert.deepEqual(updatesOf(secondConsole, 'assignment'), [
      { conversationId: conversation.id, update: { kind: 'assignment', assignedStaffId: second.staffId } },
    ])
    await eventually(() => firstConsole.left.includes(conversation.id), Boolean)
    measure(secondConsole, 'assignment update', assignedAt)
    // Transferred: nothing more of the conversation reaches the first agent.
    await staff(b, second.token).sendMessage(conversation.id, {
      contentType: 'text/plain',
      ciphertext: new TextEncoder().encode('taken over'),
    })
    await eventually(
      () => secondConsole.messages.length,
      (n) => n === 1,
    )
    assert.deepEqual(firstConsole.messages, [])
  })

  test('a status set on node A reaches the conversation’s agent on node B', async () => {
    const supervisor = staff(a, (await bank.staffToken('supervisor', 'stella')).token)
    const conversation = await supervisor.createConversation({
      customerId: bank.customerId,
      assignedStaffId: bank.agentId,
    })
    const agentConsole = await opened(staff(b, bank.agentToken))
    const statusAt = performance.now()
    await supervisor.setConversationStatus(conversation.id, 'pending')
    await supervisor.setConversationStatus(conversation.id, 'resolved')
    await eventually(
      () => updatesOf(agentConsole, 'status').length,
      (n) => n === 2,
    )
    assert.deepEqual(
      updatesOf(agentConsole, 'status').map((u) => [u.conversationId, u.update]),
      [
        [conversation.id, { kind: 'status', status: 'pending' }],
        [conversation.id, { kind: 'status', status: 'resolved' }],
      ],
    )
    assert.equal((await staff(b, bank.agentToken).getConversation(conversation.id)).status, 'resolved')
    measure(agentConsole, 'status update', statusAt)
    // Setting what is already set changes nothing and tells nobody.
    await supervisor.setConversationStatus(conversation.id, 'resolved')
    await supervisor.setConversationStatus(conversation.id, 'open')
    await eventually(
      () => updatesOf(agentConsole, 'status').length,
      (n) => n === 3,
    )
    assert.deepEqual(updatesOf(agentConsole, 'status').at(-1)?.update, { kind: 'status', status: 'open' })
  })

  test('read markers: a phone reading on node A, and the agent reading in one of two tabs, are told live once', async () => {
    const agentOnB = staff(b, bank.agentToken)
    const enrolled = await bank.enrol('marker phone', { baseUrl: a.url })
    const conversationId = await conversationWith(agentOnB, enrolled.device.id)
    const phoneApp = await opened(enrolled.client)
    const tabOnB = await opened(agentOnB)
    const tabOnA = await opened(staff(a, bank.agentToken))
    const markersOf = (watched: ReturnType<typeof watch>, kind: 'device' | 'staff') =>
      updatesOf(watched, 'markers').flatMap(({ conversationId: id, update }) =>
        id === conversationId && update.kind === 'markers' && update.member.kind === kind
          ? [[update.deliveredSeq, update.readSeq]]
          : [],
      )
    const send = (text: string) =>
      agentOnB.sendMessage(conversationId, { contentType: 'text/plain', ciphertext: Buffer.from(text) })

    // The phone's stream acknowledges the message: the delivered marker moves, and both tabs are told.
    const sentAt = performance.now()
    await send('one')
    for (const tab of [tabOnB, tabOnA])
      await eventually(
        () => markersOf(tab, 'device'),
        (m) => m.length === 1,
      )
    measure(tabOnB, 'markers update', sentAt)
    // The phone reads it (over HTTP, on node A); reading it again moves nothing and tells nobody.
    await enrolled.client.markRead(conversationId, 1)
    await enrolled.client.markRead(conversationId, 1)
    await send('two')
    for (const tab of [tabOnB, tabOnA]) {
      await eventually(
        () => markersOf(tab, 'device'),
        (m) => m.length === 3,
      )
      assert.deepEqual(markersOf(tab, 'device'), [
        [1, 0],
        [1, 1],
        [2, 1],
      ])
    }
    // The agent reads in the tab on node B: the phone and the agent's tab on node A (the same member) see it.
    await agentOnB.markRead(conversationId, 2)
    await eventually(
      () => markersOf(phoneApp, 'staff').at(-1),
      (m) => m?.[1] === 2,
    )
    await eventually(
      () => markersOf(tabOnA, 'staff').at(-1),
      (m) => m?.[1] === 2,
    )
    // The tabs' own acknowledgements moved the agent's delivered marker: each move reached the phone once, and the tab
    // whose acknowledgement it was is not told its own.
    const phoneSaw = markersOf(phoneApp, 'staff')
    assert.equal(new Set(phoneSaw.map(String)).size, phoneSaw.length)
    const tabsSaw = [...markersOf(tabOnA, 'staff'), ...markersOf(tabOnB, 'staff')]
    assert.deepEqual(tabsSaw.map(String).sort(), [...phoneSaw, [2, 2]].map(String).sort())
    assert.deepEqual(phoneApp.errors, [])
  })

  test('payment requests approved and declined by a phone on node A reach the agent on node B', async () => {
    const agentClient = staff(b, bank.agentToken)
    const phone = await bank.enrol('paying phone', { baseUrl: a.url })
    const conversation = await agentClient.createConversation({
      customerId: bank.customerId,
      assignedStaffId: bank.agentId,
      deviceIds: [phone.device.id],
    })
    const agentConsole = await opened(agentClient)
    const phoneApp = await opened(phone.client)
    const ask = (reference: string) =>
      agentClient.requestConsent({
        customerId: bank.customerId,
        conversationId: conversation.id,
        amount: { value: 2500, currency: 'EUR' },
        payee: { name: 'Landlord Ltd', account: 'DE89370400440532013000' },
        reference,
      })
    const approved = await ask('Rent')
    const declined = await ask('Deposit')
    // The phone on node A hears of both requests asked through node B.
    await eventually(
      () => updatesOf(phoneApp, 'consent').length,
      (n) => n >= 2,
    )
    const pending = await phone.client.getConsent(approved.id)
    const approvedAt = performance.now()
    await phone.client.approveConsent(pending)
    await phone.client.declineConsent(declined.id)
    await eventually(
      () => updatesOf(agentConsole, 'consent').length,
      (n) => n === 4,
    )
    assert.deepEqual(
      updatesOf(agentConsole, 'consent').map((u) => u.update),
      [
        { kind: 'consent', consentId: approved.id, status: 'pending' },
        { kind: 'consent', consentId: declined.id, status: 'pending' },
        { kind: 'consent', consentId: approved.id, status: 'approved' },
        { kind: 'consent', consentId: declined.id, status: 'declined' },
      ],
    )
    assert.equal((await agentClient.getConsent(approved.id)).status, 'approved')
    measure(agentConsole, 'consent update', approvedAt)
  })

  test('a pivot link sent through node A, opened and redeemed on node A: the agent on node B follows it live', async () => {
    const admin = staff(a, bank.adminToken)
    await admin.request('PUT', '/v1/channels/twilio', {
      address: BANK_NUMBER,
      accountSid: `AC${'0'.repeat(31)}7`,
      agentId: bank.agentId,
      secrets: { authToken: 'twilio-auth-token-two-nodes-0123456789' },
    })
    const onA = staff(a, bank.agentToken)
    const customer = await onA.request<{ id: string }>('POST', '/v1/customers', {
      externalRef: 'CUST-TWO-NODES',
      displayName: 'Pat Pivot',
      phoneNumber: CUSTOMER_PHONE,
    })
    const texted = await fetch(`${a.url}/dev/simulator/phone/twilio/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ from: CUSTOMER_PHONE, to: BANK_NUMBER, text: 'Can we talk securely?' }),
    })
    assert.equal(texted.status, 200)
    const [publicConversation] = await onA.listConversations()
    assert.equal(publicConversation?.customerId, customer.id)
    const conversationId = publicConversation.id
    const agentConsole = await opened(staff(b, bank.agentToken))

    const { link } = await onA.invitePivot(conversationId)
    const inbox = (await (
      await fetch(`${a.url}/dev/simulator/phone/twilio/inbox?address=${encodeURIComponent(CUSTOMER_PHONE)}`)
    ).json()) as { messages: { text: string; link: { url: string } | null }[] }
    const url = inbox.messages.at(-1)?.link?.url ?? /https?:\/\/\S+/.exec(inbox.messages.at(-1)?.text ?? '')?.[0]
    const token = /#t=([A-Za-z0-9_-]+)$/.exec(url ?? '')?.[1]
    assert.ok(token, 'the text carries the link')
    const openedAt = performance.now()
    const openedLink = await fetch(`${a.url}/v1/pivot/open`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    })
    assert.equal(openedLink.status, 200)
    await eventually(
      () => updatesOf(agentConsole, 'pivot').length,
      (n) => n === 2,
    )
    measure(agentConsole, 'pivot update', openedAt)
    const { code } = await onA.issueEnrolmentCode(customer.id)
    const device = await enrolDevice({ baseUrl: a.url, enrolmentCode: code, label: 'pivot phone' })
    await device.client.redeemPivotLink(token)

    await eventually(
      () => updatesOf(agentConsole, 'pivot').length,
      (n) => n === 3,
    )
    assert.deepEqual(
      updatesOf(agentConsole, 'pivot').map((u) => [u.conversationId, u.update]),
      [
        [conversationId, { kind: 'pivot', linkId: link.id, status: 'sent' }],
        [conversationId, { kind: 'pivot', linkId: link.id, status: 'opened' }],
        [conversationId, { kind: 'pivot', linkId: link.id, status: 'completed' }],
      ],
    )
  })

  test('a phone on node B revoked through node A: its stream closes at once, it gets its wipe command and wipes', async () => {
    const agent = staff(a, bank.agentToken)
    const enrolled = await bank.enrol('wiped phone', { baseUrl: b.url })
    const store = new MemoryStore()
    await store.set('messages/1', new TextEncoder().encode('hello'))
    let revoked: (outcome: { confirmed: boolean }) => void = () => {}
    const onRevoked = new Promise<{ confirmed: boolean }>((resolve) => {
      revoked = resolve
    })
    const phone = new DeviceClient({
      baseUrl: b.url,
      credentials: enrolled.client.credentials,
      WebSocket: WebSocket as never,
      remoteWipe: {
        pinnedKeys: enrolled.wipeKeys as NonNullable<typeof enrolled.wipeKeys>,
        device: {
          tenantId: enrolled.tenantId,
          deviceId: enrolled.device.id,
          keyThumbprint: enrolled.device.keyThumbprint,
        },
        stores: [store],
        onRevoked: revoked,
      },
    })
    const app = await opened(phone)
    const revokedAt = performance.now()
    await agent.revokeDevice(enrolled.device.id, 'stolen')
    assert.deepEqual(await onRevoked, { confirmed: true })
    measured.push(`revocation to wiped and confirmed ${(performance.now() - revokedAt).toFixed(0)} ms`)
    assert.deepEqual(store.values(), [])
    assert.equal(app.stream.state, 'closed')
    assert.deepEqual(app.errors, ['this device has been revoked'])
  })

  test('presence: a node killed without warning takes its staff offline, live, for a supervisor on another node within 3⅓ refreshes', async () => {
    const node = await dyingNode
    const supervisor = staff(b, (await bank.staffToken('supervisor', 'sam')).token)
    const watching = await opened(supervisor)
    const presenceOf = async (staffId: string) =>
      (await supervisor.listStaffPresence()).find((p) => p.staffId === staffId)?.presence
    const agent = await bank.staffToken('agent', 'ada')
    // The agent's console has only the dying node: it cannot fail over, as when the agent's laptop lost power too.
    await opened(staff(node, agent.token))
    // The supervisor is told of the console first (so that this word is not taken for the one awaited below).
    await eventually(() => watching.presence.includes(agent.staffId), Boolean)
    assert.equal(await presenceOf(agent.staffId), 'available')
    watching.presence.length = 0
    const killedAt = performance.now()
    node.process.kill('SIGKILL')
    // Three refreshes missed, then the next sweep: 3⅓ refreshes at most. Waited for up to three times that, so that a
    // loaded machine does not fail it, and a node that is never forgotten (or forgotten only by housekeeping) does.
    await eventually(() => watching.presence.includes(agent.staffId), Boolean, 10 * PRESENCE_REFRESH_MS)
    const toldAfter = performance.now() - killedAt
    assert.equal(await presenceOf(agent.staffId), 'offline')
    console.log(`supervisor on another node told the agent went offline ${toldAfter.toFixed(0)} ms after the kill`)
  })
})

/** A `strongroom start` process (dev mode, the test's database and NATS), for a test that kills it. */
function startNodeProcess(env: NodeJS.ProcessEnv): Promise<{ url: string; process: ChildProcess }> {
  const child = spawn(process.execPath, [...strongroomFromSource, 'start'], {
    env: {
      PATH: process.env.PATH,
      PORT: '0',
      STRONGROOM_DEV_SEED: 'false',
      LOG_LEVEL: 'info',
      ...testKeyProvider().env,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
    lines.on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; url?: string }
      if (entry.msg === 'strongroom listening' && entry.url) resolve({ url: entry.url, process: child })
    })
    child.once('exit', (code) => reject(new Error(`the node exited with ${code}`)))
  })
}
