import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  base64ToBytes,
  type DeviceClient,
  enrolDevice,
  StaffClient,
  StaffToken,
  StrongroomError,
} from '@strongroom/sdk'
import { secretHash } from '../platform/ids.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'
const bytes = (text: string) => new TextEncoder().encode(text)

describe('conversations and the message log over HTTP', () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient
  let phone: DeviceClient
  let phoneId: string
  let conversationId: string

  before(async () => {
    server = await startTestServer({ maxMessageBytes: 1024 })
    bank = await createTestBank(server)
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const enrolled = await enrolDevice({ baseUrl: server.url, enrolmentCode: await bank.enrolmentCode(), label: 'p' })
    phone = enrolled.client
    phoneId = enrolled.device.id
    const conversation = await agent.createConversation({ customerId: bank.customerId, assignedStaffId: bank.agentId })
    conversationId = conversation.id
  })
  after(() => server.stop())

  async function raw(method: string, path: string, init: { token?: string; body?: string; type?: string } = {}) {
    const headers: Record<string, string> = {}
    if (init.token) headers.authorization = `Bearer ${init.token}`
    if (init.body !== undefined) headers['content-type'] = init.type ?? 'application/json'
    const response = await fetch(server.url + path, { method, headers, body: init.body ?? null })
    const text = await response.text()
    return { status: response.status, type: response.headers.get('content-type'), body: text ? JSON.parse(text) : null }
  }

  test("a new conversation holds the customer's devices and the assigned agent", async () => {
    const conversation = await agent.getConversation(conversationId)
    assert.equal(conversation.customerId, bank.customerId)
    assert.equal(conversation.lastSeq, 0)
    assert.equal(conversation.lastMessageAt, null)
    const members = conversation.members.map((m) => `${m.kind}:${m.id}`).sort()
    assert.deepEqual(members, [`device:${phoneId}`, `staff:${bank.agentId}`].sort())
    assert.deepEqual(
      (await phone.listConversations()).map((c) => c.id),
      [conversationId],
    )
  })

  test('messages get gapless sequence numbers; the same client id returns the same message', async () => {
    const first = await phone.sendMessage(conversationId, {
      contentType: 'application/mls',
      ciphertext: bytes('one'),
      clientMessageId: 'c-1',
    })
    const second = await agent.sendMessage(conversationId, { contentType: 'text/plain', ciphertext: bytes('two') })
    assert.equal(second.seq, first.seq + 1)
    const again = await phone.sendMessage(conversationId, {
      contentType: 'application/mls',
      ciphertext: bytes('one'),
      clientMessageId: 'c-1',
    })
    assert.deepEqual(again, first)
    // The conversation says when its last message came (an inbox needs no request per conversation); a replayed
    // send is not a new message.
    const listed = (await phone.listConversations()).find((c) => c.id === conversationId)
    assert.equal(listed?.lastMessageAt, second.createdAt)
    assert.equal(listed?.lastSeq, second.seq)
    const messages = await agent.listMessages(conversationId)
    assert.deepEqual(
      messages.map((m) => new TextDecoder().decode(base64ToBytes(m.ciphertext))),
      ['one', 'two'],
    )
    assert.deepEqual(messages[0]?.sender, { kind: 'device', id: phoneId })
  })

  test('reusing a client id for different content is a conflict and stores nothing', async () => {
    await phone.sendMessage(conversationId, {
      contentType: 'text/plain',
      ciphertext: bytes('a'),
      clientMessageId: 'c-x',
    })
    const before = (await agent.getConversation(conversationId)).lastSeq
    await assert.rejects(
      phone.sendMessage(conversationId, { contentType: 'text/plain', ciphertext: bytes('b'), clientMessageId: 'c-x' }),
      (error) => error instanceof StrongroomError && error.type === `${PROBLEMS}conversations/idempotency-conflict`,
    )
    assert.equal((await agent.getConversation(conversationId)).lastSeq, before)
  })

  test('200 concurrent sends from two senders: every sequence number once, none missing', async () => {
    const start = (await agent.getConversation(conversationId)).lastSeq
    const sends = Array.from({ length: 200 }, (_, i) =>
      (i % 2 ? agent : phone).sendMessage(conversationId, { contentType: 'text/plain', ciphertext: bytes(`m${i}`) }),
    )
    const seqs = (await Promise.all(sends)).map((m) => m.seq).sort((a, b) => a - b)
    assert.deepEqual(
      seqs,
      Array.from({ length: 200 }, (_, i) => start + i + 1),
    )
    const stored = await agent.listMessages(conversationId, { after: start, limit: 1000 })
    assert.equal(stored.length, 200)
  })

  test('messages past their expiry are no longer served', async () => {
    const expiring = await phone.sendMessage(conversationId, {
      contentType: 'text/plain',
      ciphertext: bytes('soon gone'),
      expiresAt: new Date(Date.now() + 1500),
    })
    // Read once its expiry has passed, however long the send took on a busy machine.
    const expiresAt = Date.parse(expiring.expiresAt ?? '')
    await new Promise((resolve) => setTimeout(resolve, Math.max(expiresAt - Date.now(), 0) + 100))
    const messages = await agent.listMessages(conversationId, { after: expiring.seq - 1 })
    assert.ok(!messages.some((m) => m.id === expiring.id))
  })

  test('a message larger than the limit is refused with 413', async () => {
    await assert.rejects(
      phone.sendMessage(conversationId, { contentType: 'text/plain', ciphertext: new Uint8Array(1025) }),
      (error) => error instanceof StrongroomError && error.status === 413,
    )
    const body = JSON.stringify({ clientMessageId: 'big', contentType: 'text/plain', ciphertext: 'A'.repeat(100_000) })
    const tooBig = await raw('POST', `/v1/conversations/${conversationId}/messages`, { token: bank.agentToken, body })
    assert.equal(tooBig.status, 413)
    assert.equal(tooBig.body.type, `${PROBLEMS}request/too-large`)
  })

  test('bad input gets its problem and changes nothing', async () => {
    const path = `/v1/conversations/${conversationId}/messages`
    const lastSeq = (await agent.getConversation(conversationId)).lastSeq
    const cases: [string, string | undefined, string | undefined, number, string][] = [
      ['malformed JSON', '{"clientMessageId": ', undefined, 400, 'request/malformed-json'],
      [
        'wrong type',
        '{"clientMessageId": 5, "contentType": "text/plain", "ciphertext": ""}',
        undefined,
        400,
        'request/invalid',
      ],
      [
        'unknown field',
        '{"clientMessageId": "u", "contentType": "text/plain", "ciphertext": "", "admin": true}',
        undefined,
        400,
        'request/invalid',
      ],
      [
        'not base64',
        '{"clientMessageId": "u", "contentType": "text/plain", "ciphertext": "%%%"}',
        undefined,
        400,
        'request/invalid',
      ],
      ['not JSON', 'clientMessageId=u', 'application/x-www-form-urlencoded', 415, 'request/unsupported-media-type'],
      ['missing body', undefined, undefined, 400, 'request/invalid'],
    ]
    for (const [name, body, type, status, problem] of cases) {
      const result = await raw('POST', path, {
        token: bank.agentToken,
        ...(body === undefined ? {} : { body }),
        ...(type ? { type } : {}),
      })
      assert.equal(result.status, status, name)
      assert.match(result.type ?? '', /^application\/problem\+json/, name)
      assert.equal(result.body.type, PROBLEMS + problem, name)
      assert.equal(result.body.status, status, name)
    }
    const unknownField = await raw('POST', path, {
      token: bank.agentToken,
      body: '{"clientMessageId": "u", "contentType": "text/plain", "ciphertext": "", "admin": true}',
    })
    assert.deepEqual(unknownField.body.errors, [{ path: 'body', message: 'unknown field admin' }])
    assert.equal((await agent.getConversation(conversationId)).lastSeq, lastSeq)
  })

  test('missing, forged and expired staff tokens are refused', async () => {
    const path = `/v1/conversations/${conversationId}`
    const missing = await raw('GET', path)
    assert.equal(missing.status, 401)
    assert.equal(missing.body.type, `${PROBLEMS}auth/missing-credentials`)
    const forged = await raw('GET', path, { token: `srs_${'x'.repeat(43)}` })
    assert.equal(forged.body.type, `${PROBLEMS}auth/invalid-token`)
    const { token } = await bank.staffToken('agent')
    await server.ctx.db
      .updateTable('staff_tokens')
      .set({ expires_at: new Date(Date.now() - 1) })
      .where('token_hash', '=', secretHash(token))
      .execute()
    const expired = await raw('GET', path, { token })
    assert.equal(expired.status, 401)
    assert.equal(expired.body.type, `${PROBLEMS}auth/invalid-token`)
  })

  test('a staff token without the scope a route needs is refused with 403', async () => {
    const { token } = await bank.staffToken('compliance')
    const result = await raw('POST', '/v1/conversations', {
      token,
      body: JSON.stringify({ customerId: bank.customerId }),
    })
    assert.equal(result.status, 403)
    assert.equal(result.body.type, `${PROBLEMS}auth/forbidden`)
    // compliance reads every conversation of the tenant without being a member
    const read = await raw('GET', `/v1/conversations/${conversationId}`, { token })
    assert.equal(read.status, 200)
  })

  test("another tenant's conversation answers 404, never 403, and nothing is written", async () => {
    const other = await createTestBank(server, 'Other Bank')
    const outsider = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(other.adminToken) })
    const lastSeq = (await agent.getConversation(conversationId)).lastSeq
    for (const attempt of [
      () => outsider.getConversation(conversationId),
      () => outsider.listMessages(conversationId),
      () => outsider.sendMessage(conversationId, { contentType: 'text/plain', ciphertext: bytes('x') }),
      () => outsider.addMember(conversationId, { kind: 'staff', id: other.agentId }),
      () => outsider.markRead(conversationId, 1),
      () => outsider.createConversation({ customerId: bank.customerId }),
    ]) {
      await assert.rejects(attempt(), (error) => error instanceof StrongroomError && error.status === 404)
    }
    assert.equal((await agent.getConversation(conversationId)).lastSeq, lastSeq)
  })

  test('an agent who is not a member does not see the conversation; adding them does', async () => {
    const second = await bank.staffToken('agent')
    const secondAgent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(second.token) })
    await assert.rejects(
      secondAgent.getConversation(conversationId),
      (e) => e instanceof StrongroomError && e.status === 404,
    )
    await agent.addMember(conversationId, { kind: 'staff', id: second.staffId })
    assert.equal((await secondAgent.getConversation(conversationId)).id, conversationId)
  })

  test('read markers move forward only', async () => {
    await phone.markRead(conversationId, 3)
    await phone.markRead(conversationId, 2)
    const me = (await agent.getConversation(conversationId)).members.find((m) => m.id === phoneId)
    assert.equal(me?.readSeq, 3)
    assert.ok((me?.deliveredSeq ?? 0) >= 3)
  })

  test('a marker past the last message stops at it: no member claims to have read what was never sent', async () => {
    const { lastSeq } = await agent.getConversation(conversationId)
    await phone.markRead(conversationId, Number.MAX_SAFE_INTEGER)
    const me = (await agent.getConversation(conversationId)).members.find((m) => m.id === phoneId)
    assert.deepEqual([me?.readSeq, me?.deliveredSeq], [lastSeq, lastSeq])
  })
})
