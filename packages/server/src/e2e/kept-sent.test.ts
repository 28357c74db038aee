/**
 * Issue #22: a message sent again is one message. The sender keeps what it sent (even an app that keeps no texts) so
 * that it can answer a member that could not read it, for the current and the previous epoch only; the archive, which
 * read the original, keeps the copy as the same record, so its count equals what the senders sent.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { enrolDevice, StaffClient, StaffToken } from '@strongroom/sdk'
import { MemoryStore, nodeCryptoProvider, SecureMessaging } from '@strongroom/sdk/mls-node'
import { eventually } from '../testing/eventually.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { texts } from '../testing/secure-members.ts'

describe('what a member sent is kept to send again, and counted once', () => {
  let server: TestServer
  let bank: TestBank
  let conversationId: string
  let phone: SecureMessaging
  let agent: SecureMessaging
  let agentClient: StaffClient
  const phoneStore = new MemoryStore()
  const agentStore = new MemoryStore()
  const sent: string[] = []

  const archivedTexts = async () =>
    (
      await server.ctx.db
        .selectFrom('archive_records')
        .select('conversation_seq')
        .where('conversation_id', '=', conversationId)
        .where('record_class', '=', 'secure-message')
        .orderBy('conversation_seq')
        .execute()
    ).map((r) => Number(r.conversation_seq))

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    agentClient = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const enrolled = await enrolDevice({
      baseUrl: server.url,
      enrolmentCode: await bank.enrolmentCode(),
      label: 'phone',
    })
    // Neither keeps the texts it reads: what the phone sent, it keeps anyway, to send again.
    phone = await SecureMessaging.open(enrolled.client, { provider: nodeCryptoProvider, store: phoneStore })
    agent = await SecureMessaging.open(agentClient, { provider: nodeCryptoProvider, store: agentStore })
    const conversation = await agentClient.createConversation({
      customerId: bank.customerId,
      assignedStaffId: bank.agentId,
      deviceIds: [enrolled.device.id],
    })
    conversationId = conversation.id
    await agent.createGroup(conversationId, [
      { kind: 'device', id: enrolled.device.id },
      { kind: 'archive', id: 'archive' },
    ])
    assert.deepEqual(await phone.acceptWelcomes(), [conversationId])
  })

  after(() => server?.stop())

  test('a message the agent lost the key of is sent again from what the phone kept; the archive holds it once', async () => {
    await agent.send(conversationId, 'Hello, how can I help?')
    await phone.sync(conversationId)
    const original = await phone.send(conversationId, 'My card was declined at noon.')
    sent.push('Hello, how can I help?', 'My card was declined at noon.')
    assert.deepEqual(texts(await agent.sync(conversationId)), ['My card was declined at noon.'])
    // The agent's key for it is gone (a test destroying it): reading it again fails, and the agent asks for it again.
    await agentStore.set(`mls/read/${conversationId}`, new TextEncoder().encode(String(original.seq - 1)))
    const again = await agent.sync(conversationId)
    assert.ok(again.some((e) => e.kind === 'unreadable' && e.seq === original.seq && e.resendRequested))

    const phoneEvents = await phone.sync(conversationId)
    assert.deepEqual(
      phoneEvents.flatMap((e) => (e.kind === 'resent' ? [e.of] : [])),
      [original.seq],
      'sent again from what it kept, once',
    )
    const copy = (await agent.sync(conversationId)).find((e) => e.kind === 'message')
    assert.equal(copy?.kind === 'message' && copy.text, 'My card was declined at noon.')
    assert.equal(copy?.kind === 'message' && copy.copyOf, original.seq, 'the copy names the message it repeats')

    // The archive read the original and the copy: one record, under the original's seq.
    const log = await agentClient.listMessages(conversationId)
    assert.ok(
      log.some((m) => m.clientMessageId === `resend-${original.seq}`),
      'the copy is in the log',
    )
    assert.equal((await eventually(archivedTexts, (seqs) => seqs.length >= sent.length)).length, sent.length)
    assert.ok((await archivedTexts()).includes(original.seq))
  })

  test('only the latest epochs are kept: two commits later, what the phone sent before is gone from its store', async () => {
    const early = await phone.send(conversationId, 'One more thing.')
    sent.push('One more thing.')
    assert.ok(await phoneStore.get(`mls/sent/${conversationId}/${early.seq}`), 'kept while it can be asked for')
    await agent.sync(conversationId)
    await agent.addMembers(conversationId, [])
    await phone.sync(conversationId)
    assert.ok(await phoneStore.get(`mls/sent/${conversationId}/${early.seq}`), 'the previous epoch is kept')
    await agent.addMembers(conversationId, [])
    await phone.sync(conversationId)
    assert.equal(await phoneStore.get(`mls/sent/${conversationId}/${early.seq}`), undefined, 'older ones go')
    assert.equal((await eventually(archivedTexts, (seqs) => seqs.length >= sent.length)).length, sent.length)
  })

  test('a remote wipe erases what was kept to send again with the rest', async () => {
    const last = await phone.send(conversationId, 'Goodbye.')
    assert.ok(await phoneStore.get(`mls/sent/${conversationId}/${last.seq}`))
    await phoneStore.wipe()
    assert.equal(await phoneStore.get(`mls/sent/${conversationId}/${last.seq}`), undefined)
    assert.equal(await phoneStore.get(`mls/sent-index/${conversationId}`), undefined)
  })
})
