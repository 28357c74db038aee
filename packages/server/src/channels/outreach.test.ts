import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { StaffClient, StaffToken } from '@strongroom/sdk'
import { ChannelSimulator } from '@strongroom/sdk/simulator'
import { sql } from 'kysely'
import { configureSimulatedChannels } from '../seed.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { PROBLEMS, problemOf } from '../testing/problems.ts'

const BANK_NUMBER = '+442079460777'
const BANK_WHATSAPP = '106540352242999'
const PAGE_ID = '998877660001'
const GRACE_PHONE = '+447700900555'

/**
 * Issue 20: an agent writes to a customer first, on a channel the customer has (SMS, WhatsApp, Messenger), or sends a
 * secure link without waiting for them to write; WhatsApp outside its window only as approved templates.
 */
describe('writing to a customer first', () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient
  let otherAgent: StaffClient
  let otherAgentId: string
  let supervisor: StaffClient
  let phone: ChannelSimulator
  let grace: string

  const auditCount = async (action: string, conversationId: string) =>
    Number(
      (
        await sql<{ n: string }>`select count(*) as n from audit_events
          where action = ${action} and target_id = ${conversationId}`.execute(server.ctx.db)
      ).rows[0]?.n,
    )
  /** What the bank sent to the phone on a channel, oldest first. */
  const received = async (connector: 'twilio' | 'whatsapp', address: string) =>
    (await phone.thread(connector, address)).filter((m) => m.direction === 'to-phone')
  const smsTo = async (address: string) => (await received('twilio', address)).map((m) => m.text)

  before(async () => {
    server = await startTestServer({ publicUrl: 'https://bank.example' })
    bank = await createTestBank(server, 'Outreach Bank')
    await configureSimulatedChannels(server.ctx, bank.adminToken, bank.agentId, {
      twilio: BANK_NUMBER,
      whatsapp: BANK_WHATSAPP,
      messenger: PAGE_ID,
    })
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const other = await bank.staffToken('agent', 'otto')
    otherAgentId = other.staffId
    otherAgent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(other.token) })
    const sup = await bank.staffToken('supervisor', 'sue')
    supervisor = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(sup.token) })
    phone = new ChannelSimulator({ baseUrl: server.url })
    grace = (
      await agent.request<{ id: string }>('POST', '/v1/customers', {
        externalRef: 'OUT-1',
        displayName: 'Grace Outreach',
        phoneNumber: GRACE_PHONE,
      })
    ).id
  })
  after(() => server.stop())

  test('the channels a customer can be reached on, and why not where not', async () => {
    const channels = await otherAgent.customerPublicChannels(grace)
    assert.deepEqual(
      channels.map((c) => [c.connector, c.conversationId, c.window.kind, c.unreachable]),
      [
        ['twilio', null, 'none', null],
        ['whatsapp', null, 'closed', null],
        [
          'messenger',
          null,
          'closed',
          'the customer has not written to the bank on Messenger (or that conversation is not linked to them): ' +
            'Messenger gives a page no way to write first',
        ],
      ],
    )
    // Search finds the customer by name or number though no conversation with them exists yet.
    const found = await otherAgent.request<{ hits: { customerId: string; conversationIds: string[] }[] }>(
      'GET',
      `/v1/search/conversations?q=${encodeURIComponent(GRACE_PHONE)}`,
    )
    assert.deepEqual(
      found.hits.map((h) => [h.customerId, h.conversationIds]),
      [[grace, []]],
    )
    const noPhone = await otherAgent.customerPublicChannels(bank.customerId)
    assert.equal(noPhone[0]?.unreachable, 'no phone number on file for this customer')
    const refused = await problemOf(otherAgent.customerPublicChannels('cus_0000000000000000000000'))
    assert.equal(refused.status, 404)
  })

  test('an agent starts an SMS conversation: sent once however often retried, assigned to them, audited', async () => {
    const first = await otherAgent.startPublicConversation(grace, {
      connector: 'twilio',
      text: 'Hello Grace, this is the bank about your card order.',
      clientMessageId: 'hello-1',
    })
    const again = await otherAgent.startPublicConversation(grace, {
      connector: 'twilio',
      text: 'Hello Grace, this is the bank about your card order.',
      clientMessageId: 'hello-1',
    })
    assert.equal(again.conversationId, first.conversationId)
    assert.equal(again.message.messageId, first.message.messageId)
    assert.deepEqual(await smsTo(GRACE_PHONE), ['Hello Grace, this is the bank about your card order.'])
    const conversation = await otherAgent.getConversation(first.conversationId)
    assert.equal(conversation.customerId, grace)
    assert.equal(conversation.assignedStaffId, otherAgentId)
    assert.equal(await auditCount('channels.outreach.start', first.conversationId), 1)
    // A second message goes to the same conversation; the customer's answer lands there too.
    const second = await otherAgent.startPublicConversation(grace, { connector: 'twilio', text: 'Are you there?' })
    assert.equal(second.conversationId, first.conversationId)
    await phone.send('twilio', { from: GRACE_PHONE, to: BANK_NUMBER, text: 'Yes, hello' })
    const texts = (await otherAgent.listPublicMessages(first.conversationId)).map((m) => m.text)
    assert.deepEqual(texts, ['Hello Grace, this is the bank about your card order.', 'Are you there?', 'Yes, hello'])
    assert.equal((await otherAgent.customerPublicChannels(grace))[0]?.conversationId, first.conversationId)
  })

  test("another agent may not take over the customer's conversation; a supervisor joins it", async () => {
    const refused = await problemOf(agent.startPublicConversation(grace, { connector: 'twilio', text: 'Hi' }))
    assert.equal(refused.type, `${PROBLEMS}channels/customer-unreachable`)
    assert.match(refused.problem.detail ?? '', /another agent's: ask a supervisor/)
    assert.match((await agent.customerPublicChannels(grace))[0]?.unreachable ?? '', /another agent's/)
    const joined = await supervisor.startPublicConversation(grace, { connector: 'twilio', text: 'A supervisor here.' })
    assert.equal((await smsTo(GRACE_PHONE)).at(-1), 'A supervisor here.')
    assert.equal(await auditCount('channels.outreach.start', joined.conversationId), 2)
  })

  test('card data is refused before any conversation is made; a compliance officer may not write at all', async () => {
    const { n: before } = (
      await sql<{ n: string }>`select count(*) as n from channel_identities`.execute(server.ctx.db)
    ).rows[0] as { n: string }
    const refused = await problemOf(
      agent.startPublicConversation(grace, { connector: 'whatsapp', text: 'Your card 4111 1111 1111 1111' }),
    )
    assert.equal(refused.type, `${PROBLEMS}channels/sensitive-data`)
    const { n: after } = (await sql<{ n: string }>`select count(*) as n from channel_identities`.execute(server.ctx.db))
      .rows[0] as { n: string }
    assert.equal(after, before)
    const officer = await bank.staffToken('compliance', 'cora')
    const compliance = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(officer.token) })
    const forbidden = await problemOf(compliance.startPublicConversation(grace, { connector: 'twilio', text: 'Hi' }))
    assert.equal(forbidden.type, `${PROBLEMS}auth/forbidden`)
  })

  test('WhatsApp: a first message is refused without an approved template, then goes out as the template', async () => {
    const refused = await problemOf(agent.startPublicConversation(grace, { connector: 'whatsapp', text: 'Hello' }))
    assert.equal(refused.type, `${PROBLEMS}channels/outside-service-window`)
    // Nothing could go out, so no conversation was made.
    assert.equal(
      (await agent.customerPublicChannels(grace)).find((c) => c.connector === 'whatsapp')?.conversationId,
      null,
    )
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    await admin.request('PUT', '/v1/channels/whatsapp/templates', {
      templates: [
        { purpose: 'message', name: 'bank_update', language: 'en_GB', category: 'UTILITY', parameters: ['text'] },
        {
          purpose: 'pivot',
          name: 'secure_chat_invitation',
          language: 'en_GB',
          category: 'UTILITY',
          parameters: ['link-domain'],
          urlButtonBase: 'https://bank.example/secure/',
        },
      ],
    })
    const whatsapp = (await agent.customerPublicChannels(grace)).find((c) => c.connector === 'whatsapp')
    assert.deepEqual([whatsapp?.window.kind, whatsapp?.templates], ['template', ['message', 'pivot']])
    const started = await agent.startPublicConversation(grace, {
      connector: 'whatsapp',
      text: 'Your new card is on its way.',
    })
    const waId = GRACE_PHONE.slice(1)
    // The simulator plays Meta's Cloud API: a `template` message whose body parameter is the text.
    assert.deepEqual(
      (await received('whatsapp', waId)).map((m) => m.text),
      ['bank_update: Your new card is on its way.'],
    )
    // A secure link without waiting: the pivot template, its URL button carrying the link; asked again, the same link.
    const link = await agent.sendSecureLink(grace, { connector: 'whatsapp' })
    assert.equal(link.conversationId, started.conversationId)
    assert.ok(link.message)
    const repeated = await agent.sendSecureLink(grace, { connector: 'whatsapp' })
    assert.equal(repeated.link.id, link.link.id)
    assert.equal(repeated.message, undefined)
    const inbox = await received('whatsapp', waId)
    assert.equal(inbox.length, 2)
    assert.equal(inbox[1]?.text, 'secure_chat_invitation: bank.example')
    assert.match(inbox[1]?.link?.url ?? '', /^#t=srp_[A-Za-z0-9_-]+$/)
    assert.equal(await auditCount('channels.pivot.invite', started.conversationId), 1)
  })

  test('Messenger: reachable once the customer wrote and was linked; after 24 hours the human-agent tag rules hold', async () => {
    const psid = '24681357900001'
    await phone.send('messenger', { from: psid, to: PAGE_ID, text: 'Hello from Messenger' })
    const [conversation] = await agent.listConversations()
    assert.ok(conversation)
    await agent.request('POST', `/v1/conversations/${conversation.id}/public-channel/customer`, { customerId: grace })
    await server.ctx.db
      .updateTable('channel_identities')
      .set({ last_inbound_at: new Date(Date.now() - 25 * 3_600_000) })
      .where('conversation_id', '=', conversation.id)
      .execute()
    const messenger = (await agent.customerPublicChannels(grace)).find((c) => c.connector === 'messenger')
    assert.deepEqual(
      [messenger?.conversationId, messenger?.window.kind, messenger?.unreachable],
      [conversation.id, 'closed', null],
    )
    const refused = await problemOf(agent.startPublicConversation(grace, { connector: 'messenger', text: 'Hello' }))
    assert.equal(refused.type, `${PROBLEMS}channels/outside-service-window`)
    assert.match(refused.problem.detail ?? '', /no HUMAN_AGENT permission/)
  })
})
