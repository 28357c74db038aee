/**
 * The agent's desk (issue 20, item 4): open, pending and resolved; internal notes that never leave the bank; canned
 * replies per bank; search by name, phone number and public text, within what the caller may see.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type MemberClient, type Message, StaffClient, StaffToken, StrongroomError } from '@strongroom/sdk'
import type { CannedReply, ConversationNote, SearchPage } from '@strongroom/sdk/protocol'
import { ChannelSimulator } from '@strongroom/sdk/simulator'
import WebSocket from 'ws'
import { configureSimulatedChannels } from '../seed.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'
const BANK_NUMBER = '+442079460777'
const CUSTOMER_PHONE = '+447700900777'
const bytes = (text: string) => new TextEncoder().encode(text)

async function refusal(promise: Promise<unknown>): Promise<{ status: number; type: string }> {
  try {
    await promise
  } catch (error) {
    assert.ok(error instanceof StrongroomError, String(error))
    return { status: error.status, type: error.problem?.type ?? '' }
  }
  assert.fail('expected a refusal')
}

describe('the agent desk', () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient
  let admin: StaffClient
  let otherAgent: StaffClient
  let phone: ChannelSimulator
  let customerId: string
  let publicConversationId: string
  const staff = (token: string) =>
    new StaffClient({ baseUrl: server.url, credentials: new StaffToken(token), WebSocket: WebSocket as never })
  const search = (client: MemberClient, q: string, page = '') =>
    client.request<SearchPage>('GET', `/v1/search/conversations?q=${encodeURIComponent(q)}${page}`)

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server, 'Desk Bank')
    agent = staff(bank.agentToken)
    admin = staff(bank.adminToken)
    otherAgent = staff((await bank.staffToken('agent', 'Other Agent')).token)
    customerId = (
      await agent.request<{ id: string }>('POST', '/v1/customers', {
        externalRef: 'DESK-1',
        displayName: 'Zoë Müller-Smith',
        phoneNumber: CUSTOMER_PHONE,
      })
    ).id
    await configureSimulatedChannels(server.ctx, bank.adminToken, bank.agentId, { twilio: BANK_NUMBER })
    phone = new ChannelSimulator({ baseUrl: server.url })
    await phone.send('twilio', { from: CUSTOMER_PHONE, to: BANK_NUMBER, text: 'My mortgage statement is missing' })
    publicConversationId = (await agent.listConversations())[0]?.id as string
  })
  after(() => server.stop())

  test('a conversation is resolved from the console, filtered by status, and the customer’s next text reopens it', async () => {
    assert.equal((await agent.getConversation(publicConversationId)).status, 'open')
    const resolved = await agent.request<{ status: string }>(
      'PUT',
      `/v1/conversations/${publicConversationId}/status`,
      { status: 'resolved' },
    )
    assert.equal(resolved.status, 'resolved')
    const ids = async (status: string) =>
      (
        await agent.request<{ conversations: { id: string }[] }>('GET', `/v1/conversations?status=${status}`)
      ).conversations.map((c) => c.id)
    assert.deepEqual(await ids('resolved'), [publicConversationId])
    assert.deepEqual(await ids('open'), [])
    // The bank's own reply leaves it resolved; the customer's next text reopens it.
    await agent.sendPublicMessage(publicConversationId, { text: 'We have posted it again.' })
    assert.equal((await agent.getConversation(publicConversationId)).status, 'resolved')
    await phone.send('twilio', { from: CUSTOMER_PHONE, to: BANK_NUMBER, text: 'Still nothing arrived' })
    assert.equal((await agent.getConversation(publicConversationId)).status, 'open')
    assert.deepEqual(await ids('open'), [publicConversationId])
    // Audited; a status that does not exist is refused; someone outside the conversation is told it does not exist.
    await server.flushAudit()
    const audited = await server.ctx.db
      .selectFrom('audit_events')
      .select('details')
      .where('tenant_id', '=', bank.tenantId)
      .where('action', '=', 'conversations.status')
      .execute()
    assert.equal(audited.length, 1)
    const path = `/v1/conversations/${publicConversationId}/status`
    assert.deepEqual(await refusal(agent.request('PUT', path, { status: 'closed' })), {
      status: 400,
      type: `${PROBLEMS}request/invalid`,
    })
    assert.equal((await refusal(otherAgent.request('PUT', path, { status: 'resolved' }))).status, 404)
  })

  test("a note stays with staff: never on the customer's phone, a device's stream or the message log", async () => {
    const device = await bank.enrol('Phone')
    const secure = await agent.createConversation({ customerId: bank.customerId })
    const heard: Message[] = []
    let heardLast: () => void = () => {}
    const last = new Promise<void>((resolve) => {
      heardLast = resolve
    })
    const stream = device.client.stream({
      onMessage: (m) => {
        heard.push(m)
        if (m.clientMessageId === 'after-the-note') heardLast()
      },
    })
    await stream.ready
    const secret = 'Customer sounded coached: check with fraud team'
    for (const conversationId of [secure.id, publicConversationId]) {
      const note = await agent.request<ConversationNote>('POST', `/v1/conversations/${conversationId}/notes`, {
        text: secret,
      })
      assert.equal(note.text, secret)
      const { notes } = await agent.request<{ notes: ConversationNote[] }>(
        'GET',
        `/v1/conversations/${conversationId}/notes`,
      )
      assert.deepEqual(
        notes.map((n) => [n.text, n.authorStaffId]),
        [[secret, bank.agentId]],
      )
    }
    await agent.sendMessage(secure.id, {
      clientMessageId: 'after-the-note',
      contentType: 'text/plain',
      ciphertext: bytes('hello'),
    })
    await last
    stream.close()
    assert.deepEqual(
      heard.map((m) => m.clientMessageId),
      ['after-the-note'],
    )
    // Nothing reached the phone on the public channel, and the note is no message of either conversation.
    const thread = await phone.thread('twilio', CUSTOMER_PHONE)
    assert.ok(thread.every((m) => !m.text.includes('coached')))
    const stored = await server.ctx.db
      .selectFrom('messages')
      .select('id')
      .where('conversation_id', 'in', [secure.id, publicConversationId])
      .where('sender_kind', '=', 'staff')
      .execute()
    assert.equal(stored.length, 2) // the reply of the test before and 'after-the-note'
    // Sealed at rest; the customer's device and a bank backend cannot read notes; outsiders get 404.
    const row = await server.ctx.db.selectFrom('conversation_notes').select('body').executeTakeFirstOrThrow()
    assert.ok(!Buffer.from(row.body).toString('latin1').includes('coached'))
    const notesPath = `/v1/conversations/${secure.id}/notes`
    assert.equal((await refusal(device.client.request('GET', notesPath))).status, 403)
    assert.equal((await refusal(device.client.request('POST', notesPath, { text: 'x' }))).status, 403)
    assert.equal((await refusal(otherAgent.request('GET', notesPath))).status, 404)
    assert.equal((await refusal(agent.request('POST', notesPath, { text: '' }))).status, 400)
  })

  test('canned replies: admins write them, agents read them, a shortcut is the bank’s only one', async () => {
    const input = { shortcut: 'statement', title: 'Statement resent', text: 'We have sent your statement again.' }
    assert.deepEqual(await refusal(agent.request('POST', '/v1/canned-replies', input)), {
      status: 403,
      type: `${PROBLEMS}auth/forbidden`,
    })
    const made = await admin.request<CannedReply>('POST', '/v1/canned-replies', input)
    assert.equal((await refusal(admin.request('POST', '/v1/canned-replies', input))).status, 409)
    assert.equal(
      (await refusal(admin.request('POST', '/v1/canned-replies', { ...input, shortcut: 'Has Spaces' }))).status,
      400,
    )
    const changed = await admin.request<CannedReply>('PUT', `/v1/canned-replies/${made.id}`, {
      ...input,
      text: 'Your statement is on its way.',
    })
    assert.equal(changed.text, 'Your statement is on its way.')
    const listed = await agent.request<{ replies: CannedReply[] }>('GET', '/v1/canned-replies')
    assert.deepEqual(
      listed.replies.map((r) => [r.shortcut, r.text]),
      [['statement', 'Your statement is on its way.']],
    )
    // Another bank sees none of them.
    const other = await createTestBank(server, 'Other Desk Bank')
    const theirs = await staff(other.agentToken).request<{ replies: CannedReply[] }>('GET', '/v1/canned-replies')
    assert.deepEqual(theirs.replies, [])
    assert.equal(
      (await refusal(staff(other.adminToken).request('DELETE', `/v1/canned-replies/${made.id}`))).status,
      404,
    )
    await admin.request('DELETE', `/v1/canned-replies/${made.id}`)
    assert.deepEqual((await agent.request<{ replies: CannedReply[] }>('GET', '/v1/canned-replies')).replies, [])
  })

  test('search finds the customer by phone number, a word of their name and a word they wrote, grouped', async () => {
    for (const q of [CUSTOMER_PHONE, '+44 7700 900777', 'müller', 'MULLER', 'mortgage', 'Statement missing']) {
      const { hits } = await search(agent, q)
      assert.equal(hits.length, 1, q)
      assert.equal(hits[0]?.customerId, customerId, q)
      assert.deepEqual(hits[0]?.conversationIds, [publicConversationId], q)
    }
    // A bank's customers are its own: another bank's agent finds none of them.
    const stranger = await createTestBank(server, 'Stranger Bank')
    assert.deepEqual((await search(staff(stranger.agentToken), 'mortgage')).hits, [])
    assert.deepEqual((await search(staff(stranger.agentToken), CUSTOMER_PHONE)).hits, [])
    // Found by what they wrote, a customer comes with their other conversations too.
    const other = await agent.createConversation({ customerId })
    const byText = (await search(agent, 'mortgage')).hits[0]
    assert.deepEqual(byText?.conversationIds.sort(), [publicConversationId, other.id].sort())
    assert.deepEqual(byText?.matched, ['text'])
    assert.deepEqual(byText?.messages, [{ conversationId: publicConversationId, seq: 1 }])
    assert.deepEqual((await search(agent, 'Zoe')).hits[0]?.matched, ['name'])
    // Part of a word, or a word never written, finds nothing; a card number is masked before it is indexed.
    await phone.send('twilio', { from: CUSTOMER_PHONE, to: BANK_NUMBER, text: 'card 4111 1111 1111 1111 lost' })
    assert.equal((await search(agent, 'lost')).hits.length, 1)
    for (const q of ['4111', '4111 1111 1111 1111']) assert.deepEqual((await search(agent, q)).hits, [], q)
    assert.deepEqual((await search(agent, 'mortg')).hits, [])
    assert.deepEqual((await search(agent, 'pension')).hits, [])
    // An agent outside the conversation finds nothing of it; a query of punctuation only is refused.
    assert.deepEqual((await search(otherAgent, 'mortgage')).hits, [])
    assert.equal((await refusal(search(agent, '?!'))).status, 400)
    // Audited, without what was typed.
    await server.flushAudit()
    const audited = await server.ctx.db
      .selectFrom('audit_events')
      .select('details')
      .where('tenant_id', '=', bank.tenantId)
      .where('action', '=', 'desk.search')
      .execute()
    assert.ok(audited.length >= 6)
    assert.ok(audited.every((a) => !JSON.stringify(a.details).includes('mortgage')))
  })

  test('search pages through many customers, most recent first', async () => {
    for (let i = 0; i < 5; i++) {
      const { id } = await agent.request<{ id: string }>('POST', '/v1/customers', {
        externalRef: `PAGE-${i}`,
        displayName: `Pagey Person${i}`,
      })
      await agent.createConversation({ customerId: id })
    }
    const first = await search(agent, 'pagey', '&limit=2')
    const second = await search(agent, 'pagey', `&limit=2&offset=${first.next}`)
    const third = await search(agent, 'pagey', `&limit=2&offset=${second.next}`)
    assert.deepEqual([first.hits.length, second.hits.length, third.hits.length, third.next], [2, 2, 1, null])
    const all = [...first.hits, ...second.hits, ...third.hits].map((h) => h.customerId)
    assert.equal(new Set(all).size, 5)
  })

  test("one customer's conversations on every channel, those the caller sees", async () => {
    const secure = await agent.createConversation({ customerId })
    const { conversations } = await agent.request<{ conversations: { id: string }[] }>(
      'GET',
      `/v1/customers/${customerId}/conversations`,
    )
    assert.equal(conversations[0]?.id, publicConversationId)
    assert.equal(conversations.at(-1)?.id, secure.id)
    assert.equal(conversations.length, 3)
    const theirs = await otherAgent.request<{ conversations: unknown[] }>(
      'GET',
      `/v1/customers/${customerId}/conversations`,
    )
    assert.deepEqual(theirs.conversations, [])
  })
})
