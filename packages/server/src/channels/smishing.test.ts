import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { StaffClient, StaffToken } from '@strongroom/sdk'
import { sql } from 'kysely'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { problemOf } from '../testing/problems.ts'

const BANK_NUMBER = '+442071838750'
const CUSTOMER_PHONE = '+447700900124'

describe('smishing and spoofing: lookalike links, shorteners and senders claiming to be the bank', () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient
  let admin: StaffClient

  const customerWrites = async (text: string, from = CUSTOMER_PHONE) => {
    const response = await fetch(`${server.url}/dev/simulator/phone/twilio/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ from, to: BANK_NUMBER, text }),
    })
    assert.equal(((await response.json()) as { status: number }).status, 200)
  }
  const conversationOf = async () => {
    const [conversation] = await agent.listConversations()
    assert.ok(conversation)
    return conversation.id
  }
  const lastMessage = async (id: string) =>
    (
      await agent.request<{ messages: { text: string; risk: string[] }[] }>(
        'GET',
        `/v1/conversations/${id}/public-messages`,
      )
    ).messages.at(-1)
  const riskOf = async (id: string) =>
    (await agent.request<{ conversations: { risk: string[] }[] }>('GET', `/v1/channels/conversations?ids=${id}`))
      .conversations[0]?.risk

  before(async () => {
    server = await startTestServer({ publicUrl: 'https://secure.example-bank.com' })
    bank = await createTestBank(server, 'Lookalike Bank')
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    await admin.request('PUT', '/v1/channels/twilio', {
      address: BANK_NUMBER,
      accountSid: `AC${'0'.repeat(31)}1`,
      agentId: bank.agentId,
      secrets: { authToken: 'twilio-auth-token-0123456789abcdef' },
    })
  })
  after(() => server.stop())

  test('an admin registers the bank’s domains and sender IDs; bad input and other roles change nothing', async () => {
    const policy = { domains: ['Example-Bank.com', 'www.examplebank.co.uk'], senderIds: ['EXAMPLEBNK'] }
    const saved = await admin.request('PUT', '/v1/policies/links', policy)
    assert.deepEqual(saved, { domains: ['example-bank.com', 'examplebank.co.uk'], senderIds: ['EXAMPLEBNK'] })
    assert.equal((await problemOf(admin.request('PUT', '/v1/policies/links', { domains: ['nodot'] }))).status, 400)
    assert.equal(
      (await problemOf(admin.request('PUT', '/v1/policies/links', { domains: ['a b.com'], senderIds: [] }))).status,
      400,
    )
    assert.equal((await problemOf(agent.request('PUT', '/v1/policies/links', policy))).status, 403)
    assert.deepEqual(await admin.request('GET', '/v1/policies/links'), saved)
  })

  for (const [name, text, flag] of [
    ['a digit for a letter', 'Your account is locked, log in at examp1e-bank.com/verify', 'lookalike-link'],
    ['a Cyrillic homograph', 'Confirm at https://ехаmple-bank.com/login now', 'lookalike-link'],
    ['the homograph in punycode', 'Confirm at https://xn--mple-bank-zyh8c1l.com/login', 'lookalike-link'],
    ['the bank’s name inside another domain', 'see example-bank.com.secure-login.top/x', 'lookalike-link'],
    ['a link shortener', 'your parcel: bit.ly/3xYz9', 'link-shortener'],
    [
      'the bank’s domain as a user name',
      'Log in at https://example-bank.com@secure-login.top/verify',
      'lookalike-link',
    ],
    [
      'the bank’s domain and a port as a user name',
      'Log in at https://example-bank.com:443@203.0.113.9/',
      'lookalike-link',
    ],
  ] as const) {
    test(`${name} in an inbound SMS flags the message and the conversation, audited`, async () => {
      await customerWrites(text)
      const id = await conversationOf()
      assert.deepEqual((await lastMessage(id))?.risk, [flag])
      assert.ok((await riskOf(id))?.includes(flag))
      const audit = await sql<{ details: string }>`select details from audit_events
        where action = 'channels.smishing.flagged' order by id desc limit 1`.execute(server.ctx.db)
      assert.match(audit.rows[0]?.details ?? '', new RegExp(flag))
      assert.ok(!(audit.rows[0]?.details ?? '').includes(CUSTOMER_PHONE))
    })
  }

  test('the bank’s own links and ordinary text raise nothing', async () => {
    await customerWrites('I got a text pointing to https://www.example-bank.com/help and to wikipedia.org, is it real?')
    const id = await conversationOf()
    assert.deepEqual((await lastMessage(id))?.risk, [])
  })

  test('a sender claiming one of the bank’s sender IDs or numbers is flagged as spoofed', async () => {
    await customerWrites('Your card is blocked, reply with your PIN', BANK_NUMBER)
    const spoofed = await conversationOf()
    assert.deepEqual((await lastMessage(spoofed))?.risk, ['spoofed-sender'])
    assert.deepEqual(await riskOf(spoofed), ['spoofed-sender'])
  })

  test('outbound, every link must be on the bank’s domains; the pivot names the domain of the bank’s links', async () => {
    await customerWrites('hello again')
    const id = await conversationOf()
    const reply = (clientMessageId: string, text: string) =>
      agent.request('POST', `/v1/conversations/${id}/public-messages`, { clientMessageId, text })
    for (const text of [
      'see https://evil.example.org/x',
      'go to examp1e-bank.com',
      'short: bit.ly/abc',
      'log in at https://www.example-bank.com@evil.example.org/x',
    ]) {
      const refused = await problemOf(reply(`bad-${text.length}`, text))
      assert.equal(refused.status, 422)
      assert.equal(refused.kind, 'channels/link-not-allowed')
    }
    assert.ok(await reply('good', 'Our help pages: https://www.example-bank.com/help'))
    const customer = await agent.request<{ id: string }>('POST', '/v1/customers', {
      externalRef: 'CUST-SMISH',
      displayName: 'Pat Customer',
      phoneNumber: '+447700900125',
    })
    await customerWrites('hi, I am a customer', '+447700900125')
    const linked = await conversationOf()
    await agent.request('POST', `/v1/conversations/${linked}/pivot`, { replace: true })
    const inbox = await fetch(
      `${server.url}/dev/simulator/phone/twilio/inbox?address=${encodeURIComponent('+447700900125')}`,
    )
    const messages = ((await inbox.json()) as { messages: { text: string }[] }).messages
    assert.match(messages.at(-1)?.text ?? '', /Our links only ever go to secure\.example-bank\.com\./)
    assert.ok(customer.id)
  })
})
