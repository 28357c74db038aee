/**
 * Issue #17: secure (MLS) application messages go over the WebSocket stream, pipelined, under the same rules as
 * POST …/messages: the delivery service's epoch rule, idempotency by client message id, no plaintext in a secure
 * conversation, and the size limit. Commits stay on HTTP.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  base64ToBytes,
  enrolDevice,
  type Message,
  type MessageStream,
  StaffClient,
  StaffToken,
  StrongroomError,
} from '@strongroom/sdk'
import { MLS_CONTENT_TYPE, type SecureEvent } from '@strongroom/sdk/mls-node'
import WebSocket from 'ws'
import { eventually } from '../testing/eventually.ts'
import type { TestBank, TestServer } from '../testing/harness.ts'
import { openMember, startArchivingServer, texts } from '../testing/secure-members.ts'

/** The problem type a stream send was refused with (its tail, as the catalogue names it). */
async function refusal(sending: Promise<unknown>): Promise<string> {
  try {
    await sending
  } catch (error) {
    assert.ok(error instanceof StrongroomError, `a problem, not ${String(error)}`)
    return error.type.replace(/^.*\/problems\//, '')
  }
  assert.fail('the stream accepted it')
}

describe('secure messages over the stream', () => {
  let server: TestServer
  let bank: TestBank
  let archivedTexts: (conversationId: string) => string[]
  let conversationId: string
  let agent: Awaited<ReturnType<typeof openMember<StaffClient>>>
  let phone: Awaited<ReturnType<typeof openMember>>
  let phoneDeviceId: string
  let agentStream: MessageStream
  let phoneStream: MessageStream
  /** Application messages the agent's member handed to HTTP instead of the stream. */
  let overHttp = 0
  const phoneEvents: SecureEvent[] = []
  let phoneReading: Promise<unknown> = Promise.resolve()
  const phoneTexts = async () => {
    await phoneReading
    return texts(phoneEvents)
  }

  before(async () => {
    ;({ server, bank, archivedTexts } = await startArchivingServer())
    const agentClient = new StaffClient({
      baseUrl: server.url,
      credentials: new StaffToken(bank.agentToken),
      WebSocket: WebSocket as never,
    })
    const enrolled = await enrolDevice({
      baseUrl: server.url,
      enrolmentCode: await bank.enrolmentCode(),
      label: 'phone',
      WebSocket: WebSocket as never,
    })
    phoneDeviceId = enrolled.device.id
    agent = await openMember(agentClient, (inner) => ({
      ...inner,
      sendApplicationMessage: (...args) => {
        overHttp++
        return inner.sendApplicationMessage(...args)
      },
    }))
    phone = await openMember(enrolled.client)
    conversationId = (
      await agentClient.createConversation({
        customerId: bank.customerId,
        assignedStaffId: bank.agentId,
        deviceIds: [phoneDeviceId],
      })
    ).id
    await agent.secure.createGroup(conversationId, [
      { kind: 'device', id: phoneDeviceId },
      { kind: 'archive', id: 'archive' },
    ])
    assert.deepEqual(await phone.secure.acceptWelcomes(), [conversationId])
    agentStream = agentClient.stream()
    // The phone reads what its stream brings, one message after another, as an app does.
    phoneStream = enrolled.client.stream({
      onMessage: (message: Message) => {
        phoneReading = phoneReading.then(async () => phoneEvents.push(...(await phone.secure.receive(message))))
      },
    })
    await Promise.all([agentStream.ready(), phoneStream.ready()])
    agent.secure.sendOver(agentStream)
  })

  after(async () => {
    agentStream?.close()
    phoneStream?.close()
    await server?.stop()
  })

  test('messages sent at once are encrypted one after another, acknowledged in order, read by the phone and archived', async () => {
    const words = Array.from({ length: 30 }, (_, i) => `message ${i + 1}`)
    const sent = await Promise.all(words.map((word) => agent.secure.send(conversationId, word)))
    assert.equal(overHttp, 0, 'no application message went over HTTP')
    const seqs = sent.map((m) => m.seq)
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
      'committed in the order they were sent',
    )
    assert.equal(new Set(seqs).size, words.length)
    assert.ok(sent.every((m) => m.contentType === MLS_CONTENT_TYPE && m.sender.kind === 'staff'))
    assert.deepEqual(await eventually(phoneTexts, (read) => read.length >= words.length), words)
    await server.archiveMember?.idle()
    assert.deepEqual(archivedTexts(conversationId), words)
  })

  test('a message encrypted for an earlier epoch is refused over the stream with the current epoch; send re-bases', async () => {
    const [earlier] = await phone.client
      .listMessages(conversationId, { after: 0, limit: 1000 })
      .then((all) => all.filter((m) => m.sender.kind === 'staff' && base64ToBytes(m.ciphertext)[3] === 2))
    assert.ok(earlier)
    // The phone commits (a tablet of the customer joins): the group moves to the next epoch.
    const tablet = await enrolDevice({ baseUrl: server.url, enrolmentCode: await bank.enrolmentCode(), label: 'tab' })
    await (await openMember(tablet.client)).secure.replenishKeyPackages()
    await agent.client.addMember(conversationId, { kind: 'device', id: tablet.device.id })
    await phone.secure.addMembers(conversationId, [{ kind: 'device', id: tablet.device.id }])

    const stale = agentStream.send(conversationId, {
      contentType: MLS_CONTENT_TYPE,
      ciphertext: base64ToBytes(earlier.ciphertext),
      clientMessageId: 'replayed-old-epoch',
    })
    const error = await stale.catch((e: unknown) => e)
    assert.ok(error instanceof StrongroomError)
    assert.match(error.type, /\/e2e\/epoch-conflict$/)
    assert.equal(typeof error.problem.currentEpoch, 'number')

    // The agent's member has not read the commit: its first try is refused the same way, and it catches up.
    const after = await agent.secure.send(conversationId, 'after the tablet joined')
    assert.equal(overHttp, 0)
    await eventually(phoneTexts, (read) => read.at(-1) === 'after the tablet joined')
    assert.ok(after.seq > earlier.seq)
  })

  test('the same client message id twice is kept once and acknowledged as the same message', async () => {
    const before = await phone.client.listMessages(conversationId, { after: 0, limit: 1000 })
    const message = await agent.secure.send(conversationId, 'once')
    const again = await agentStream.send(conversationId, {
      contentType: MLS_CONTENT_TYPE,
      ciphertext: base64ToBytes(message.ciphertext),
      clientMessageId: message.clientMessageId,
    })
    assert.deepEqual([again.seq, again.id, again.created], [message.seq, message.id, false])
    const afterwards = await phone.client.listMessages(conversationId, { after: 0, limit: 1000 })
    assert.equal(afterwards.length, before.length + 1)
    // The same id with other bytes is no retry: refused, nothing kept.
    const other = agentStream.send(conversationId, {
      contentType: MLS_CONTENT_TYPE,
      ciphertext: base64ToBytes(afterwards.at(-2)?.ciphertext as string),
      clientMessageId: message.clientMessageId,
    })
    assert.equal(await refusal(other), 'conversations/idempotency-conflict')
    assert.equal((await phone.client.listMessages(conversationId, { after: 0, limit: 1000 })).length, afterwards.length)
  })

  test('plaintext in a secure conversation is refused over the stream, as over HTTP', async () => {
    const plain = agentStream.send(conversationId, {
      contentType: 'text/plain',
      ciphertext: new TextEncoder().encode('in clear'),
    })
    assert.equal(await refusal(plain), 'e2e/encryption-required')
  })

  test('a message over the size limit is refused over the stream and nothing is kept', async () => {
    const before = (await phone.client.listMessages(conversationId, { after: 0, limit: 1000 })).length
    const tooBig = agent.secure.send(conversationId, 'x'.repeat(server.config.maxMessageBytes + 1))
    assert.equal(await refusal(tooBig), 'conversations/message-too-large')
    assert.equal(overHttp, 0)
    assert.equal((await phone.client.listMessages(conversationId, { after: 0, limit: 1000 })).length, before)
    // The stream goes on.
    await agent.secure.send(conversationId, 'smaller')
  })

  test('a stream that closes with messages on their way: they go over HTTP under their ids, each kept once', async () => {
    const before = (await phone.client.listMessages(conversationId, { after: 0, limit: 1000 })).length
    const sending = ['last one', 'and another'].map((text) => agent.secure.send(conversationId, text))
    agentStream.close()
    const sent = await Promise.all(sending)
    assert.ok(overHttp >= 1)
    const all = await phone.client.listMessages(conversationId, { after: 0, limit: 1000 })
    assert.equal(all.length, before + 2)
    assert.deepEqual(
      sent.map((m) => m.seq),
      all.slice(-2).map((m) => m.seq),
    )
    const read = await eventually(phoneTexts, (all) => all.at(-1) === 'and another')
    assert.deepEqual(read.slice(-2), ['last one', 'and another'])
  })
})
