/**
 * A payment request left unanswered and a pivot link left unused are said to have expired on the streams, by the
 * consent and pivot modules' housekeeping: the console and the customer's devices stop showing them as waiting or
 * live without being reloaded. Several nodes sweep at once; each expiry is told once. What was decided, used or not yet
 * expired is not told.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type ConversationUpdate, enrolDevice, type MemberClient, StaffClient, StaffToken } from '@strongroom/sdk'
import WebSocket from 'ws'
import { announceExpiredConsents } from './consent/consents.ts'
import { announceExpiredLinks } from './pivot/pivot.ts'
import { eventually } from './testing/eventually.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from './testing/harness.ts'
import { configureSimulatedSms, SimulatedPhone } from './testing/simulated-phone.ts'

const BANK_NUMBER = '+442071838752'
const CUSTOMER_PHONE = '+447700900452'

describe('expiries told live by the housekeeping sweep', () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient
  const streams: { close(): void }[] = []

  /** Everything a client's stream was told, once it is open. */
  async function updatesOf(client: MemberClient): Promise<ConversationUpdate[]> {
    const updates: ConversationUpdate[] = []
    const stream = client.stream({ onUpdate: (_conversationId, update) => updates.push(update) })
    streams.push(stream)
    await stream.ready()
    return updates
  }
  /**
   * Two nodes' passes at once, then a later one: exactly one pass told one expiry. Gives the expiries of that kind the
   * stream heard.
   */
  async function sweptOnce(
    sweep: typeof announceExpiredConsents,
    updates: ConversationUpdate[],
    kind: ConversationUpdate['kind'],
  ): Promise<ConversationUpdate[]> {
    const together = await Promise.all([sweep(server.ctx), sweep(server.ctx)])
    assert.deepEqual([...together.sort(), await sweep(server.ctx)], [0, 1, 0])
    return eventually(
      () => updates.filter((u) => u.kind === kind && 'status' in u && u.status === 'expired'),
      (told) => told.length > 0,
    )
  }
  const backdate = (table: 'consents' | 'pivot_links', id: string) =>
    server.ctx.db
      .updateTable(table)
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('id', '=', id)
      .execute()

  before(async () => {
    server = await startTestServer({ publicUrl: 'https://bank.example' })
    bank = await createTestBank(server, 'Expiry Bank')
    agent = new StaffClient({
      baseUrl: server.url,
      credentials: new StaffToken(bank.agentToken),
      WebSocket: WebSocket as never,
    })
  })
  after(async () => {
    for (const stream of streams) stream.close()
    await server.stop()
  })

  test('an unanswered payment request: its customer’s device hears it expired once; a decided one is not told', async () => {
    const phone = await enrolDevice({
      baseUrl: server.url,
      enrolmentCode: await bank.enrolmentCode(),
      label: 'phone',
      WebSocket: WebSocket as never,
    })
    const payment = {
      amount: { value: 2500, currency: 'GBP' },
      payee: { name: 'ACME', account: 'GB29NWBK60161331926819' },
    }
    const unanswered = await agent.requestConsent({ customerId: bank.customerId, ...payment, reference: 'late' })
    const approved = await agent.requestConsent({ customerId: bank.customerId, ...payment, reference: 'paid' })
    const waiting = await agent.requestConsent({ customerId: bank.customerId, ...payment, reference: 'not yet' })
    await phone.client.approveConsent(await phone.client.getConsent(approved.id))
    const updates = await updatesOf(phone.client)
    await backdate('consents', unanswered.id)
    await backdate('consents', approved.id)

    assert.deepEqual(await sweptOnce(announceExpiredConsents, updates, 'consent'), [
      { kind: 'consent', consentId: unanswered.id, status: 'expired' },
    ])
    assert.equal((await agent.getConsent(unanswered.id)).status, 'expired')
    assert.equal((await agent.getConsent(waiting.id)).status, 'pending')
  })

  test('an unused pivot link: the agent hears it expired once; a used or replaced one is not told', async () => {
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    await configureSimulatedSms(admin, { bankNumber: BANK_NUMBER, agentId: bank.agentId })
    await agent.request('POST', '/v1/customers', {
      externalRef: 'EXPIRY-1',
      displayName: 'Lena Late',
      phoneNumber: CUSTOMER_PHONE,
    })
    await new SimulatedPhone(server.url, CUSTOMER_PHONE).texts(BANK_NUMBER, 'Please call me about my loan')
    const conversations = await agent.listConversations()
    const conversation = conversations.find((c) => c.customerId !== bank.customerId)
    assert.ok(conversation)
    const invite = () =>
      agent.request<{ link: { id: string } }>('POST', `/v1/conversations/${conversation.id}/pivot`, { replace: true })
    const replaced = (await invite()).link
    const unused = (await invite()).link
    const updates = await updatesOf(agent)
    await backdate('pivot_links', replaced.id)
    await backdate('pivot_links', unused.id)

    assert.deepEqual(await sweptOnce(announceExpiredLinks, updates, 'pivot'), [
      { kind: 'pivot', linkId: unused.id, status: 'expired' },
    ])
    const { links } = await agent.request<{ links: { id: string; status: string }[] }>(
      'GET',
      `/v1/conversations/${conversation.id}/pivot-links`,
    )
    assert.deepEqual(
      links.map((l) => [l.id, l.status]).sort(),
      [
        [replaced.id, 'revoked'],
        [unused.id, 'expired'],
      ].sort(),
    )
  })
})
