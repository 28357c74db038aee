/**
 * Issue #20: typing and read indicators are MLS application messages relayed over the stream to the members connected
 * now, under the rule of a send, and never stored, archived, counted or sent again; members that never see them (the
 * archive member, a phone that was away) still read every later message.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  type Message,
  type MessageStream,
  type ReceivedSignal,
  StaffClient,
  StaffToken,
  StrongroomError,
} from '@strongroom/sdk'
import { type SignalEvent, SignalPacer, TYPING_INTERVAL_MS } from '@strongroom/sdk/mls-node'
import { MAX_SIGNAL_BYTES } from '@strongroom/sdk/protocol'
import WebSocket from 'ws'
import { eventually } from '../testing/eventually.ts'
import type { TestBank, TestServer } from '../testing/harness.ts'
import { openMember, startArchivingServer, texts } from '../testing/secure-members.ts'

async function refusal(sending: Promise<unknown>): Promise<string> {
  const error = await sending.then(
    () => assert.fail('the stream relayed it'),
    (e: unknown) => e,
  )
  assert.ok(error instanceof StrongroomError, `a problem, not ${String(error)}`)
  return error.type.replace(/^.*\/problems\//, '')
}

describe('signals: typing and read indicators', () => {
  let server: TestServer
  let bank: TestBank
  let archived: Awaited<ReturnType<typeof startArchivingServer>>['archived']
  let archivedTexts: (conversationId: string) => string[]
  let conversationId: string
  let agent: Awaited<ReturnType<typeof openMember>>
  let phone: Awaited<ReturnType<typeof openMember>>
  let agentStream: MessageStream
  let phoneStream: MessageStream
  const toAgent: ReceivedSignal[] = []
  const toPhone: ReceivedSignal[] = []
  const phoneMessages: Message[] = []

  before(async () => {
    ;({ server, bank, archived, archivedTexts } = await startArchivingServer())
    const agentClient = new StaffClient({
      baseUrl: server.url,
      credentials: new StaffToken(bank.agentToken),
      WebSocket: WebSocket as never,
    })
    const enrolled = await bank.enrol('phone')
    agent = await openMember(agentClient)
    phone = await openMember(enrolled.client)
    conversationId = (
      await agentClient.createConversation({
        customerId: bank.customerId,
        assignedStaffId: bank.agentId,
        deviceIds: [enrolled.device.id],
      })
    ).id
    await agent.secure.createGroup(conversationId, [
      { kind: 'device', id: enrolled.device.id },
      { kind: 'archive', id: 'archive' },
    ])
    assert.deepEqual(await phone.secure.acceptWelcomes(), [conversationId])
    agentStream = agentClient.stream({ onSignal: (s) => void toAgent.push(s) })
    phoneStream = enrolled.client.stream({
      onSignal: (s) => void toPhone.push(s),
      onMessage: (m) => void phoneMessages.push(m),
    })
    await Promise.all([agentStream.ready(), phoneStream.ready()])
    agent.secure.sendOver(agentStream)
    phone.secure.sendOver(phoneStream)
  })

  after(async () => {
    agentStream?.close()
    phoneStream?.close()
    await server?.stop()
  })

  test('typing and read go both ways, end-to-end encrypted, from the sender the group authenticated, and nothing is stored', async () => {
    const before = await agent.client.listMessages(conversationId, { after: 0, limit: 1000 })
    const first = await agent.secure.send(conversationId, 'Hello, how can I help?')
    await eventually(
      async () => phoneMessages.length,
      (n) => n > 0,
    )
    for (const m of phoneMessages.splice(0)) await phone.secure.receive(m)

    assert.equal(await agent.secure.signal(conversationId, { kind: 'typing' }), true)
    const typing = await eventually(async () => toPhone.at(-1), Boolean)
    assert.equal(typing?.sender.kind, 'staff')
    // What travelled is MLS ciphertext: the words of the signal are not in it.
    assert.ok(!new TextDecoder().decode(typing?.ciphertext).includes('typing'))
    const readByPhone = (await phone.secure.readSignal(typing as ReceivedSignal)) as SignalEvent
    assert.deepEqual(readByPhone.signal, { kind: 'typing' })
    assert.deepEqual([readByPhone.sender.kind, readByPhone.sender.id], ['staff', bank.agentId])

    assert.equal(await phone.secure.signal(conversationId, { kind: 'read', seq: first.seq, messageId: first.id }), true)
    const read = await eventually(async () => toAgent.at(-1), Boolean)
    assert.deepEqual((await agent.secure.readSignal(read as ReceivedSignal))?.signal, {
      kind: 'read',
      seq: first.seq,
      messageId: first.id,
    })
    assert.equal(read?.sender.kind, 'device')

    // Not stored: the log holds the one message; the conversation's last seq did not move; the sender heard nothing.
    const afterwards = await agent.client.listMessages(conversationId, { after: 0, limit: 1000 })
    assert.equal(afterwards.length, before.length + 1)
    assert.equal((await agent.client.getConversation(conversationId)).lastSeq, first.seq)
    assert.ok(
      toAgent.every((s) => s.sender.kind === 'device'),
      "the agent's own signals are not echoed to it",
    )
  })

  test('members that never see signals (the archive member, a phone not reading them) read every later message; the archive keeps no signal', async () => {
    const recordsBefore = archived.filter((r) => r.conversationId === conversationId).length
    for (let i = 0; i < 40; i++) {
      assert.equal(await agent.secure.signal(conversationId, { kind: 'typing' }), true)
    }
    const sent = await agent.secure.send(conversationId, 'after forty signals')
    await eventually(
      async () => phoneMessages.at(-1)?.seq,
      (seq) => seq === sent.seq,
    )
    // The phone read none of the forty: it steps over their generations.
    const events = []
    for (const m of phoneMessages.splice(0)) events.push(...(await phone.secure.receive(m)))
    assert.deepEqual(texts(events), ['after forty signals'])
    await server.archiveMember?.idle()
    assert.equal(archivedTexts(conversationId).at(-1), 'after forty signals')
    const records = archived.filter((r) => r.conversationId === conversationId)
    assert.equal(records.length, recordsBefore + 1, 'one record: the message, none for the signals')
  })

  test('a stored message relayed as a signal is not taken for one, and still reads from the log', async () => {
    const sent = await agent.secure.send(conversationId, 'a message, not a signal')
    await eventually(
      async () => phoneMessages.at(-1)?.seq,
      (seq) => seq === sent.seq,
    )
    const replayed = await phone.secure.readSignal({
      conversationId,
      ciphertext: Uint8Array.from(Buffer.from(sent.ciphertext, 'base64')),
    })
    assert.equal(replayed, undefined)
    const events = []
    for (const m of phoneMessages.splice(0)) events.push(...(await phone.secure.receive(m)))
    assert.deepEqual(texts(events), ['a message, not a signal'])
  })

  test('a staff member who is not in the conversation cannot send one; nobody hears it', async () => {
    const other = await bank.staffToken('agent', 'other agent')
    const otherClient = new StaffClient({
      baseUrl: server.url,
      credentials: new StaffToken(other.token),
      WebSocket: WebSocket as never,
    })
    const otherStream = otherClient.stream()
    await otherStream.ready()
    const heard = toPhone.length
    try {
      // As a send would be: the conversation is not one this staff member may see.
      assert.equal(await refusal(otherStream.signal(conversationId, new Uint8Array(300))), 'request/not-found')
    } finally {
      otherStream.close()
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.equal(toPhone.length, heard)
  })

  test('a signal over MAX_SIGNAL_BYTES is refused; one that is no message of the group at its epoch is refused', async () => {
    assert.equal(
      await refusal(agentStream.signal(conversationId, new Uint8Array(MAX_SIGNAL_BYTES + 1))),
      'conversations/signal-too-large',
    )
    assert.equal(await refusal(agentStream.signal(conversationId, new Uint8Array(200))), 'e2e/malformed-message')
  })

  test('not sent again: with the stream closed, a signal does not go and is not queued', async () => {
    const stream = agent.client.stream()
    await stream.ready()
    agent.secure.sendOver(stream)
    stream.close()
    assert.equal(await agent.secure.signal(conversationId, { kind: 'typing' }), false)
    agent.secure.sendOver(agentStream)
  })

  test('the pacer lets a typing indicator go at most once per interval and a read one only forwards', () => {
    let now = 0
    const pacer = new SignalPacer(() => now)
    assert.equal(pacer.typing('c'), true)
    now += TYPING_INTERVAL_MS - 1
    assert.equal(pacer.typing('c'), false)
    now += 1
    assert.equal(pacer.typing('c'), true)
    pacer.sent('c')
    assert.equal(pacer.typing('c'), true)
    assert.equal(pacer.read('c', 5), true)
    assert.equal(pacer.read('c', 5), false)
    assert.equal(pacer.read('c', 4), false)
    assert.equal(pacer.read('c', 6), true)
  })
})
