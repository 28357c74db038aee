import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { enrolDevice, type MemberClient, StaffClient, StaffToken, StrongroomError } from '@strongroom/sdk'
import { sql } from 'kysely'
import { ArchiveMember } from '../archive/archive-member.ts'
import { archiveStoreSink } from '../archive/archive-sink.ts'
import type { LocalKeyFileProvider } from '../platform/keyring/local-key-file.ts'
import { openSigningKey } from '../platform/keyring/signing-keys.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { PROBLEMS, problemOf } from '../testing/problems.ts'
import { computeTwilioSignature } from './connectors/twilio.ts'
import { PUBLIC_MESSAGE_TYPE } from './envelope.ts'

const BANK_NUMBER = '+442071838750'
const OTHER_BANK_NUMBER = '+442071838999'
const CUSTOMER_PHONE = '+447700900123'
const TWILIO_TOKEN = 'twilio-auth-token-0123456789abcdef'
const OTHER_TWILIO_TOKEN = 'twilio-auth-token-of-the-other-bank'
const WA_PHONE_ID = '106540352242922'
const WA_SECRET = 'whatsapp-app-secret-0123456789'
const WA_VERIFY = 'whatsapp-verify-token-0123456789'
const PAGE_ID = '998877665544'
const PAGE_SECRET = 'messenger-app-secret-0123456789'
const PAN = '4111 1111 1111 1111'

interface PublicMessageView {
  id: string
  seq: number
  at: string
  direction: string
  text: string
  masked: string[]
  imported: boolean
  sender: { kind: string; id: string }
  delivery: { status: string; errorCode: string | null } | null
}

interface InboxMessage {
  providerMessageId: string
  to: string
  text: string
  link: { url: string; label: string } | null
}

describe('public channels and the pivot into the secure channel', () => {
  let server: TestServer
  let bank: TestBank
  let otherBank: TestBank
  let admin: StaffClient
  let agent: StaffClient
  let customerId: string

  async function post(path: string, body: unknown) {
    const response = await fetch(server.url + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    return { status: response.status, body: await response.json() }
  }
  const customerWrites = (connector: string, body: Record<string, unknown>) =>
    post(`/dev/simulator/phone/${connector}/messages`, body)
  async function inbox(connector: string, address: string): Promise<InboxMessage[]> {
    const response = await fetch(
      `${server.url}/dev/simulator/phone/${connector}/inbox?address=${encodeURIComponent(address)}`,
    )
    return ((await response.json()) as { messages: InboxMessage[] }).messages
  }
  const publicMessages = async (client: MemberClient, conversationId: string) =>
    (
      await client.request<{ messages: PublicMessageView[] }>(
        'GET',
        `/v1/conversations/${conversationId}/public-messages`,
      )
    ).messages
  async function count(table: 'messages' | 'channel_messages' | 'channel_identities' | 'conversations') {
    const row = await server.ctx.db
      .selectFrom(table)
      .select(({ fn }) => fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow()
    return Number(row.n)
  }
  async function rowCounts() {
    return {
      messages: await count('messages'),
      channelMessages: await count('channel_messages'),
      identities: await count('channel_identities'),
      conversations: await count('conversations'),
    }
  }
  /** The public conversation of a channel identity, found as the agent would: the newest conversation they are in. */
  async function newestConversation(client: MemberClient) {
    const [conversation] = await client.listConversations()
    assert.ok(conversation)
    return conversation
  }
  async function enrolFor(customer: string, label: string) {
    const { code } = await agent.issueEnrolmentCode(customer)
    return enrolDevice({ baseUrl: server.url, enrolmentCode: code, label })
  }
  const tokenOf = (message: InboxMessage | undefined) => {
    const url = message?.link?.url ?? /https?:\/\/\S+/.exec(message?.text ?? '')?.[0]
    const token = /#t=([A-Za-z0-9_-]+)$/.exec(url ?? '')?.[1]
    assert.ok(token, 'the message carries a pivot link')
    return token
  }

  before(async () => {
    server = await startTestServer({ publicUrl: 'https://bank.example' })
    bank = await createTestBank(server, 'Channel Bank')
    otherBank = await createTestBank(server, 'Other Bank')
    admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const customer = await agent.request<{ id: string; phoneNumber: string }>('POST', '/v1/customers', {
      externalRef: 'CUST-42',
      displayName: 'Grace Customer',
      phoneNumber: CUSTOMER_PHONE,
    })
    assert.equal(customer.phoneNumber, CUSTOMER_PHONE)
    customerId = customer.id
    await admin.request('PUT', '/v1/channels/twilio', {
      address: BANK_NUMBER,
      accountSid: `AC${'0'.repeat(31)}1`,
      agentId: bank.agentId,
      secrets: { authToken: TWILIO_TOKEN },
    })
    await admin.request('PUT', '/v1/channels/whatsapp', {
      address: WA_PHONE_ID,
      apiVersion: 'v23.0',
      agentId: bank.agentId,
      secrets: { appSecret: WA_SECRET, accessToken: 'whatsapp-access-token-xyz', verifyToken: WA_VERIFY },
    })
    await admin.request('PUT', '/v1/channels/messenger', {
      address: PAGE_ID,
      apiVersion: 'v23.0',
      agentId: bank.agentId,
      secrets: { appSecret: PAGE_SECRET, accessToken: 'messenger-page-token-xyz', verifyToken: `${WA_VERIFY}-page` },
    })
    const otherAdmin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(otherBank.adminToken) })
    await otherAdmin.request('PUT', '/v1/channels/twilio', {
      address: OTHER_BANK_NUMBER,
      accountSid: `AC${'0'.repeat(31)}2`,
      agentId: otherBank.agentId,
      secrets: { authToken: OTHER_TWILIO_TOKEN },
    })
  })
  after(() => server.stop())

  describe('channel configuration', () => {
    test('secrets are stored sealed and never returned; only admins configure channels', async () => {
      const { channels } = await admin.request<{ channels: Record<string, unknown>[] }>('GET', '/v1/channels')
      const twilio = channels.find((c) => c.connector === 'twilio')
      assert.deepEqual(twilio?.secretsSet, ['authToken'])
      assert.equal(twilio?.address, BANK_NUMBER)
      assert.ok(!JSON.stringify(channels).includes(TWILIO_TOKEN))
      const { rows } = await sql<{ secrets: Uint8Array }>`select secrets from channel_configs`.execute(server.ctx.db)
      for (const row of rows) {
        for (const secret of [TWILIO_TOKEN, WA_SECRET, PAGE_SECRET, WA_VERIFY]) {
          assert.ok(!Buffer.from(row.secrets).includes(secret))
        }
      }
      const refused = await problemOf(
        agent.request('PUT', '/v1/channels/twilio', { address: BANK_NUMBER, secrets: { authToken: TWILIO_TOKEN } }),
      )
      assert.equal(refused.status, 403)
      const audit = await sql<{
        details: string
      }>`select details from audit_events where action = 'channels.configure'`.execute(server.ctx.db)
      assert.ok(audit.rows.length >= 3)
      assert.ok(!JSON.stringify(audit.rows).includes(TWILIO_TOKEN))
    })

    test('a receiving number belongs to one tenant', async () => {
      const otherAdmin = new StaffClient({
        baseUrl: server.url,
        credentials: new StaffToken(otherBank.adminToken),
      })
      const taken = await problemOf(
        otherAdmin.request('PUT', '/v1/channels/whatsapp', {
          address: WA_PHONE_ID,
          apiVersion: 'v23.0',
          secrets: { appSecret: 'another-secret-1234', accessToken: 'another-token-1234', verifyToken: 'x'.repeat(20) },
        }),
      )
      assert.equal(taken.type, `${PROBLEMS}tenancy/duplicate`)
    })
  })

  describe('SMS through Twilio', () => {
    test('an SMS lands in the public conversation of the customer whose number it is, sealed at rest', async () => {
      const sent = await customerWrites('twilio', {
        from: CUSTOMER_PHONE,
        to: BANK_NUMBER,
        text: 'Hello, is my card blocked?',
      })
      assert.equal(sent.body.status, 200)
      const conversation = await newestConversation(agent)
      assert.equal(conversation.customerId, customerId)
      const [message] = await publicMessages(agent, conversation.id)
      assert.equal(message?.text, 'Hello, is my card blocked?')
      assert.equal(message?.direction, 'inbound')
      assert.equal(message?.sender.kind, 'channel')
      const { rows } = await sql<{ ciphertext: Uint8Array; content_type: string }>`
        select ciphertext, content_type from messages where conversation_id = ${conversation.id}`.execute(server.ctx.db)
      assert.equal(rows[0]?.content_type, 'application/vnd.strongroom.channel-message+sealed')
      assert.ok(!Buffer.from(rows[0]?.ciphertext ?? []).includes('card blocked'))
      const identities = await sql<{ address: Uint8Array }>`select address from channel_identities`.execute(
        server.ctx.db,
      )
      for (const row of identities.rows) assert.ok(!Buffer.from(row.address).includes(CUSTOMER_PHONE))
    })

    test('a bad or missing signature is refused with 401 and nothing is stored, only counted', async () => {
      const before = await rowCounts()
      const forged = await customerWrites('twilio', {
        from: '+447700900555',
        to: BANK_NUMBER,
        text: 'forged',
        signature: 'invalid',
      })
      assert.equal(forged.body.status, 401)
      const unsigned = await customerWrites('twilio', {
        from: '+447700900555',
        to: BANK_NUMBER,
        text: 'unsigned',
        signature: 'missing',
      })
      assert.equal(unsigned.body.status, 401)
      // Correctly signed, but for a URL other than the one we are reached at.
      const form = new URLSearchParams({
        MessageSid: `SM${'a'.repeat(32)}`,
        From: '+447700900555',
        To: BANK_NUMBER,
        Body: 'x',
      })
      const wrongUrl = await fetch(`${server.url}/v1/channels/twilio/webhook`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-twilio-signature': computeTwilioSignature(TWILIO_TOKEN, `${server.url}/v1/channels/twilio/webhook`, form),
        },
        body: form.toString(),
      })
      assert.equal(wrongUrl.status, 401)
      const problem = await wrongUrl.json()
      assert.equal(problem.type, `${PROBLEMS}channels/invalid-signature`)
      // Tampered after signing.
      const signature = computeTwilioSignature(TWILIO_TOKEN, 'https://bank.example/v1/channels/twilio/webhook', form)
      form.set('Body', 'tampered')
      const tampered = await fetch(`${server.url}/v1/channels/twilio/webhook`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signature },
        body: form.toString(),
      })
      assert.equal(tampered.status, 401)
      assert.deepEqual(await rowCounts(), before)
      const metrics = await (await fetch(`${server.url}/metrics`)).text()
      assert.match(metrics, /strongroom_channel_webhook_refusals_total\{connector="twilio",reason="mismatch"\} 3/)
      assert.match(metrics, /strongroom_channel_webhook_refusals_total\{connector="twilio",reason="missing"\} 1/)
    })

    test('a number no tenant has configured is refused like a bad signature', async () => {
      const before = await rowCounts()
      const form = new URLSearchParams({
        MessageSid: `SM${'b'.repeat(32)}`,
        From: CUSTOMER_PHONE,
        To: '+15005550006',
        Body: 'x',
      })
      const response = await fetch(`${server.url}/v1/channels/twilio/webhook`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-twilio-signature': computeTwilioSignature(
            TWILIO_TOKEN,
            'https://bank.example/v1/channels/twilio/webhook',
            form,
          ),
        },
        body: form.toString(),
      })
      assert.equal(response.status, 401)
      assert.deepEqual(await rowCounts(), before)
    })

    test("the receiving number picks the tenant: the other bank's number reaches only the other bank", async () => {
      const otherAgent = new StaffClient({
        baseUrl: server.url,
        credentials: new StaffToken(otherBank.agentToken),
      })
      const sent = await customerWrites('twilio', {
        from: CUSTOMER_PHONE,
        to: OTHER_BANK_NUMBER,
        text: 'Hi other bank',
      })
      assert.equal(sent.body.status, 200)
      const conversation = await newestConversation(otherAgent)
      // The other bank does not know this phone number: an unidentified conversation.
      assert.equal(conversation.customerId, null)
      assert.deepEqual(
        (await publicMessages(otherAgent, conversation.id)).map((m) => m.text),
        ['Hi other bank'],
      )
      const ours = await newestConversation(agent)
      assert.ok(!(await publicMessages(agent, ours.id)).some((m) => m.text === 'Hi other bank'))
    })

    test('a provider retrying a webhook does not duplicate the message', async () => {
      const body = { from: CUSTOMER_PHONE, to: BANK_NUMBER, text: 'retried', providerMessageId: `SM${'c'.repeat(32)}` }
      assert.equal((await customerWrites('twilio', body)).body.status, 200)
      const before = await rowCounts()
      assert.equal((await customerWrites('twilio', body)).body.status, 200)
      assert.equal((await customerWrites('twilio', body)).body.status, 200)
      assert.deepEqual(await rowCounts(), before)
      const conversation = await newestConversation(agent)
      assert.equal((await publicMessages(agent, conversation.id)).filter((m) => m.text === 'retried').length, 1)
    })

    test('a card number sent in is masked before storage, audited without the value, and the customer is invited', async () => {
      const sent = await customerWrites('twilio', {
        from: CUSTOMER_PHONE,
        to: BANK_NUMBER,
        text: `my card is ${PAN} cvv 123`,
      })
      assert.equal(sent.body.status, 200)
      const conversation = await newestConversation(agent)
      const messages = await publicMessages(agent, conversation.id)
      const masked = messages.find((m) => m.masked.length > 0)
      assert.equal(masked?.text, 'my card is [card •••• 1111] cvv [CVV]')
      assert.deepEqual(masked?.masked, ['card-number', 'cvv'])
      // Nowhere in the database: not in the sealed messages, not in any table as text.
      const digits = PAN.replace(/ /g, '')
      const { rows } = await sql<{ ciphertext: Uint8Array }>`select ciphertext from messages`.execute(server.ctx.db)
      for (const row of rows) {
        assert.ok(!Buffer.from(row.ciphertext).includes(PAN) && !Buffer.from(row.ciphertext).includes(digits))
      }
      const audit = await sql<{ details: string }>`
        select details from audit_events where action = 'channels.dlp.masked'`.execute(server.ctx.db)
      assert.equal(audit.rows.length, 1)
      assert.ok(!JSON.stringify(audit.rows).includes('1111'))
      assert.match(JSON.stringify(audit.rows), /card-number/)
      // The automatic invitation: a pivot link on the SMS thread.
      const invitation = (await inbox('twilio', CUSTOMER_PHONE)).at(-1)
      assert.match(invitation?.text ?? '', /https:\/\/bank\.example\/secure\/#t=/)
      const links = await agent.request<{ links: { status: string; createdBy: { kind: string } }[] }>(
        'GET',
        `/v1/conversations/${conversation.id}/pivot-links`,
      )
      assert.equal(links.links[0]?.createdBy.kind, 'system')
      // The link text stored in the thread does not carry the token.
      const stored = (await publicMessages(agent, conversation.id)).at(-1)
      assert.equal(stored?.sender.kind, 'system')
      assert.ok(!stored?.text.includes(tokenOf(invitation)))
    })

    test('public messages, both ways, reach the compliance archive as stored (card numbers masked)', async () => {
      await customerWrites('twilio', { from: CUSTOMER_PHONE, to: BANK_NUMBER, text: `archive me ${PAN}` })
      const conversation = await newestConversation(agent)
      await agent.request('POST', `/v1/conversations/${conversation.id}/public-messages`, {
        clientMessageId: 'archive-reply',
        text: 'Noted, thank you',
      })
      const compliance = new StaffClient({
        baseUrl: server.url,
        credentials: new StaffToken((await bank.staffToken('compliance')).token),
      })
      type Found = { records: { content: { text?: string; direction?: string } | null }[] }
      const archived = async () =>
        (await compliance.request<Found>('GET', `/v1/archive/records?conversationId=${conversation.id}`)).records
      const wanted = ['inbound: archive me [card •••• 1111]', 'outbound: Noted, thank you']
      const deadline = Date.now() + 5000
      let texts: string[] = []
      while (Date.now() < deadline) {
        texts = (await archived()).map((r) => `${r.content?.direction}: ${r.content?.text}`)
        if (wanted.every((t) => texts.includes(t))) break
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      assert.ok(texts.includes('inbound: archive me [card •••• 1111]'), texts.join(' | '))
      assert.ok(texts.includes('outbound: Noted, thank you'), texts.join(' | '))
    })

    test('an archive member that was down catches up on the public messages it missed', async () => {
      await server.archiveMember?.stop()
      await customerWrites('twilio', { from: CUSTOMER_PHONE, to: BANK_NUMBER, text: 'said while the archive was down' })
      const provider = server.keyProvider
      const member = await ArchiveMember.start(server.ctx, {
        credentialKey: await openSigningKey(server.ctx.db, provider, 'mls-credential'),
        kek: server.ctx.archiveKek as LocalKeyFileProvider,
        sink: archiveStoreSink(server.ctx),
        partition: { index: 0, count: 1 },
      })
      try {
        await member.idle()
        const { rows } = await sql<{ n: number }>`
          select count(*)::int as n from archive_records where record_class = 'public-message'
            and source_ref like 'channel:%'`.execute(server.ctx.db)
        const texts = await sql<{ id: string }>`
          select m.id from messages m join archive_records a on a.source_ref = 'channel:' || m.id
          where m.content_type = ${PUBLIC_MESSAGE_TYPE}`.execute(server.ctx.db)
        const all = await sql<{ id: string }>`
          select id from messages where content_type = ${PUBLIC_MESSAGE_TYPE}`.execute(server.ctx.db)
        assert.equal(texts.rows.length, all.rows.length, 'every public message is in the archive')
        assert.ok((rows[0]?.n ?? 0) >= all.rows.length)
      } finally {
        await member.stop()
      }
    })

    test('an agent replies: sent with an idempotency key, and receipts move its delivery state forward only', async () => {
      const conversation = await newestConversation(agent)
      const path = `/v1/conversations/${conversation.id}/public-messages`
      const sent = await agent.request<{ messageId: string; delivery: { status: string; providerMessageId: string } }>(
        'POST',
        path,
        { clientMessageId: 'reply-1', text: 'Your card is fine.' },
      )
      assert.equal(sent.delivery.status, 'queued')
      const again = await agent.request<typeof sent>('POST', path, {
        clientMessageId: 'reply-1',
        text: 'Your card is fine.',
      })
      assert.equal(again.messageId, sent.messageId)
      const delivered = (await inbox('twilio', CUSTOMER_PHONE)).filter((m) => m.text === 'Your card is fine.')
      assert.equal(delivered.length, 1, 'the same clientMessageId is not sent twice')
      const receipt = (status: string) =>
        post('/dev/simulator/phone/twilio/receipts', {
          to: BANK_NUMBER,
          providerMessageId: sent.delivery.providerMessageId,
          status,
        })
      assert.equal((await receipt('delivered')).body.status, 200)
      assert.equal((await receipt('sent')).body.status, 200)
      const view = (await publicMessages(agent, conversation.id)).find((m) => m.id === sent.messageId)
      assert.equal(view?.delivery?.status, 'delivered')
      // A forged receipt changes nothing.
      assert.equal(
        (
          await post('/dev/simulator/phone/twilio/receipts', {
            to: BANK_NUMBER,
            providerMessageId: sent.delivery.providerMessageId,
            status: 'failed',
            signature: 'invalid',
          })
        ).body.status,
        401,
      )
      assert.equal(
        (await publicMessages(agent, conversation.id)).find((m) => m.id === sent.messageId)?.delivery?.status,
        'delivered',
      )
    })

    test('an agent cannot send a card number on a public channel', async () => {
      const conversation = await newestConversation(agent)
      const before = await rowCounts()
      const inboxBefore = (await inbox('twilio', CUSTOMER_PHONE)).length
      const refused = await problemOf(
        agent.request('POST', `/v1/conversations/${conversation.id}/public-messages`, {
          clientMessageId: 'reply-pan',
          text: `Is it ${PAN}?`,
        }),
      )
      assert.equal(refused.type, `${PROBLEMS}channels/sensitive-data`)
      assert.equal(refused.status, 422)
      assert.deepEqual(await rowCounts(), before)
      assert.equal((await inbox('twilio', CUSTOMER_PHONE)).length, inboxBefore)
    })
    test("the bank's own patterns are masked inbound and refused outbound; one RE2 cannot compile changes nothing", async () => {
      const policy = { patterns: [{ label: 'national id', pattern: '\\b[A-Z]{2}\\d{6}[A-D]\\b' }] }
      assert.equal((await problemOf(agent.request('PUT', '/v1/policies/dlp', policy))).status, 403)
      assert.deepEqual(await admin.request('PUT', '/v1/policies/dlp', policy), policy)
      try {
        const invalid = await problemOf(
          admin.request('PUT', '/v1/policies/dlp', { patterns: [{ label: 'repeated digit', pattern: '(\\d)\\1' }] }),
        )
        assert.equal(invalid.status, 400)
        assert.match(invalid.problem.detail ?? '', /^pattern "repeated digit": /)
        assert.deepEqual(await admin.request('GET', '/v1/policies/dlp'), policy)

        await customerWrites('twilio', { from: CUSTOMER_PHONE, to: BANK_NUMBER, text: 'my id is ab123456c' })
        const conversation = await newestConversation(agent)
        const inbound = (await publicMessages(agent, conversation.id)).filter((m) => m.direction === 'inbound')
        assert.equal(inbound.at(-1)?.text, 'my id is [national id]')
        assert.deepEqual(inbound.at(-1)?.masked, ['custom'])
        const { rows } = await sql<{ ciphertext: Uint8Array }>`select ciphertext from messages`.execute(server.ctx.db)
        assert.ok(rows.every((row) => !Buffer.from(row.ciphertext).includes('ab123456c')))

        const refused = await problemOf(
          agent.request('POST', `/v1/conversations/${conversation.id}/public-messages`, {
            clientMessageId: 'reply-national-id',
            text: 'Is your id AB123456C?',
          }),
        )
        assert.equal(refused.type, `${PROBLEMS}channels/sensitive-data`)
      } finally {
        await admin.request('PUT', '/v1/policies/dlp', { patterns: [] })
      }
    })
  })

  describe('WhatsApp', () => {
    const WA_ID = CUSTOMER_PHONE.slice(1)

    test('the subscription handshake answers the challenge only for the configured verify token', async () => {
      const handshake = (token: string) =>
        fetch(
          `${server.url}/v1/channels/whatsapp/webhook?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=${token}`,
        )
      const ok = await handshake(WA_VERIFY)
      assert.equal(ok.status, 200)
      assert.equal(await ok.text(), '1158201444')
      const wrong = await handshake('not-the-verify-token-000')
      assert.equal(wrong.status, 403)
    })

    test('a WhatsApp message is matched to the customer by phone number; a bad signature stores nothing', async () => {
      const before = await rowCounts()
      for (const signature of ['invalid', 'missing']) {
        const refused = await customerWrites('whatsapp', { from: WA_ID, to: WA_PHONE_ID, text: 'x', signature })
        assert.equal(refused.body.status, 401)
      }
      // A body signed with the right secret, then altered.
      const body = JSON.stringify({ object: 'whatsapp_business_account', entry: [] })
      const signature = `sha256=${createHmac('sha256', WA_SECRET).update(body).digest('hex')}`
      const altered = await fetch(`${server.url}/v1/channels/whatsapp/webhook`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature },
        body: body.replace('entry', 'entry '),
      })
      assert.equal(altered.status, 401)
      assert.deepEqual(await rowCounts(), before)
      const sent = await customerWrites('whatsapp', { from: WA_ID, to: WA_PHONE_ID, text: 'Hi on WhatsApp' })
      assert.equal(sent.body.status, 200)
      const conversation = await newestConversation(agent)
      assert.equal(conversation.customerId, customerId)
      assert.deepEqual(
        (await publicMessages(agent, conversation.id)).map((m) => m.text),
        ['Hi on WhatsApp'],
      )
    })

    test('within 24 hours the agent may write; after, the window refusal is a clear problem and nothing is stored', async () => {
      const conversation = await newestConversation(agent)
      const path = `/v1/conversations/${conversation.id}/public-messages`
      const sent = await agent.request<{ delivery: { status: string } }>('POST', path, {
        clientMessageId: 'wa-1',
        text: 'Hello!',
      })
      assert.equal(sent.delivery.status, 'queued')
      assert.equal((await inbox('whatsapp', WA_ID)).at(-1)?.text, 'Hello!')
      await server.ctx.db
        .updateTable('channel_identities')
        .set({ last_inbound_at: new Date(Date.now() - 25 * 3600_000) })
        .where('conversation_id', '=', conversation.id)
        .execute()
      const before = await rowCounts()
      const refused = await problemOf(agent.request('POST', path, { clientMessageId: 'wa-2', text: 'Still there?' }))
      assert.equal(refused.type, `${PROBLEMS}channels/outside-service-window`)
      assert.equal(refused.status, 409)
      assert.deepEqual(await rowCounts(), before)
    })

    test('a pivot 25 hours after the last message goes out as the registered template, the link as its URL button', async () => {
      const conversation = await newestConversation(agent)
      const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
      const pivot = {
        purpose: 'pivot',
        name: 'secure_chat_invitation',
        language: 'en_GB',
        category: 'UTILITY',
        parameters: ['link-domain'],
        urlButtonBase: 'https://bank.example/secure/',
      }
      const windowOf = async () => (await agent.conversationChannels([conversation.id]))[0]?.window
      assert.deepEqual(await windowOf(), {
        kind: 'closed',
        closesAt: null,
        reason: 'more than 24 hours since the customer wrote on WhatsApp, and no template is registered for this',
      })
      // A pivot template without its URL button cannot carry the link; two for one purpose are ambiguous.
      const { urlButtonBase: _, ...buttonless } = pivot
      for (const templates of [[buttonless], [pivot, pivot]]) {
        const invalid = await problemOf(admin.request('PUT', '/v1/channels/whatsapp/templates', { templates }))
        assert.equal(invalid.status, 400)
      }
      assert.deepEqual(await admin.request('PUT', '/v1/channels/whatsapp/templates', { templates: [pivot] }), {
        templates: [pivot],
      })
      assert.deepEqual(await admin.request('GET', '/v1/channels/whatsapp/templates'), { templates: [pivot] })
      assert.equal((await windowOf())?.kind, 'template')
      // Still 25 hours after the customer's last message (the test above): a free text is refused, the pivot is not.
      const text = await problemOf(
        agent.request('POST', `/v1/conversations/${conversation.id}/public-messages`, {
          clientMessageId: 'wa-3',
          text: 'Still there?',
        }),
      )
      assert.equal(text.type, `${PROBLEMS}channels/outside-service-window`)
      assert.match(text.problem.detail ?? '', /no template is registered for this/)
      await agent.request('POST', `/v1/conversations/${conversation.id}/pivot`, {})
      const sent = (await inbox('whatsapp', WA_ID)).at(-1)
      assert.equal(sent?.text, 'secure_chat_invitation: bank.example')
      assert.match(sent?.link?.url ?? '', /^#t=srp_[A-Za-z0-9_-]+$/)
      const [link] = await agent.listPivotLinks(conversation.id)
      assert.equal(link?.status, 'sent')
    })
  })

  describe('Messenger', () => {
    const PSID = '24681357902468'

    test('an unknown sender gets an unidentified conversation the agent links before inviting', async () => {
      const sent = await customerWrites('messenger', { from: PSID, to: PAGE_ID, text: 'Hello from Messenger' })
      assert.equal(sent.body.status, 200)
      const conversation = await newestConversation(agent)
      assert.equal(conversation.customerId, null)
      const unlinked = await problemOf(agent.request('POST', `/v1/conversations/${conversation.id}/pivot`, {}))
      assert.equal(unlinked.type, `${PROBLEMS}channels/customer-unknown`)
      await agent.request('POST', `/v1/conversations/${conversation.id}/public-channel/customer`, { customerId })
      assert.equal((await agent.getConversation(conversation.id)).customerId, customerId)
      const relink = await problemOf(
        agent.request('POST', `/v1/conversations/${conversation.id}/public-channel/customer`, {
          customerId: bank.customerId,
        }),
      )
      assert.equal(relink.status, 409)
      await agent.request('POST', `/v1/conversations/${conversation.id}/pivot`, {})
      const button = (await inbox('messenger', PSID)).at(-1)
      assert.equal(button?.link?.label, 'Continue securely')
      assert.match(button?.link?.url ?? '', /^https:\/\/bank\.example\/secure\/#t=srp_/)
    })

    test('a bad signature is refused', async () => {
      const before = await rowCounts()
      const refused = await customerWrites('messenger', { from: PSID, to: PAGE_ID, text: 'x', signature: 'invalid' })
      assert.equal(refused.body.status, 401)
      assert.deepEqual(await rowCounts(), before)
    })

    test('after 24 hours a reply is refused with the reason, unless the page may send HUMAN_AGENT replies', async () => {
      const conversation = (await agent.listConversations()).find((c) => c.customerId === customerId)
      assert.ok(conversation)
      const channelOf = async () => (await agent.conversationChannels([conversation.id]))[0]
      assert.equal((await channelOf())?.window.kind, 'open')
      await server.ctx.db
        .updateTable('channel_identities')
        .set({ last_inbound_at: new Date(Date.now() - 25 * 3600_000) })
        .where('conversation_id', '=', conversation.id)
        .execute()
      const path = `/v1/conversations/${conversation.id}/public-messages`
      const before = await rowCounts()
      const refused = await problemOf(agent.request('POST', path, { clientMessageId: 'fb-late', text: 'Still there?' }))
      assert.equal(refused.type, `${PROBLEMS}channels/outside-service-window`)
      assert.match(refused.problem.detail ?? '', /the page has no HUMAN_AGENT permission/)
      assert.deepEqual(await rowCounts(), before)
      assert.equal((await channelOf())?.window.kind, 'closed')
      // Meta granted the page the Human Agent permission: an agent may answer for 7 days.
      const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
      await admin.request('PUT', '/v1/channels/messenger', {
        address: PAGE_ID,
        apiVersion: 'v23.0',
        agentId: bank.agentId,
        humanAgentTag: true,
        secrets: {},
      })
      const window = (await channelOf())?.window
      assert.equal(window?.kind, 'human-agent')
      assert.ok(Date.parse(window?.closesAt ?? '') > Date.now() + 5 * 24 * 3600_000)
      const sent = await agent.request<{ delivery: { status: string } }>('POST', path, {
        clientMessageId: 'fb-tagged',
        text: 'Still there?',
      })
      assert.equal(sent.delivery.status, 'queued')
    })
  })

  describe('pivot from SMS to the secure channel', () => {
    const PIVOT_PHONE = '+447700900777'
    let pivotCustomer: string
    let conversationId: string
    let phone: Awaited<ReturnType<typeof enrolDevice>>
    let tablet: Awaited<ReturnType<typeof enrolDevice>>
    let stranger: Awaited<ReturnType<typeof enrolDevice>>

    /** A new link each time (`replace`): these tests are about each link's life, not the one-live-link flow. */
    async function invite(ttlSeconds?: number): Promise<string> {
      await agent.request('POST', `/v1/conversations/${conversationId}/pivot`, {
        replace: true,
        ...(ttlSeconds ? { ttlSeconds } : {}),
      })
      return tokenOf((await inbox('twilio', PIVOT_PHONE)).at(-1))
    }
    const redeem = (device: Awaited<ReturnType<typeof enrolDevice>>, token: string) =>
      device.client.request<{ secureConversationId: string; importedMessages: number }>('POST', '/v1/pivot/redeem', {
        token,
      })

    before(async () => {
      const customer = await agent.request<{ id: string }>('POST', '/v1/customers', {
        externalRef: 'CUST-PIVOT',
        displayName: 'Pivot Customer',
        phoneNumber: PIVOT_PHONE,
      })
      pivotCustomer = customer.id
      phone = await enrolFor(pivotCustomer, 'phone')
      tablet = await enrolFor(pivotCustomer, 'tablet')
      stranger = await enrolFor(bank.customerId, 'someone else')
      await customerWrites('twilio', { from: PIVOT_PHONE, to: BANK_NUMBER, text: 'I want to dispute a payment' })
      conversationId = (await newestConversation(agent)).id
      await agent.request('POST', `/v1/conversations/${conversationId}/public-messages`, {
        clientMessageId: 'before-pivot',
        text: 'Happy to help.',
      })
    })

    test('happy path: the link opens, the device redeems it, the history moves and the SMS thread is closed', async () => {
      const token = await invite()
      const sms = (await inbox('twilio', PIVOT_PHONE)).at(-1)
      assert.match(sms?.text ?? '', /Continue securely: https:\/\/bank\.example\/secure\/#t=srp_/)
      const links = () =>
        agent.request<{ links: { status: string; secureConversationId: string | null }[] }>(
          'GET',
          `/v1/conversations/${conversationId}/pivot-links`,
        )
      assert.equal((await links()).links[0]?.status, 'sent')
      const opened = await post('/v1/pivot/open', { token })
      assert.equal(opened.status, 200)
      assert.deepEqual(Object.keys(opened.body), ['expiresAt'])
      assert.equal((await links()).links[0]?.status, 'opened')

      const result = await redeem(phone, token)
      // The customer's message and the agent's reply; the invitation itself stays behind.
      assert.equal(result.importedMessages, 2)
      const [link] = (await links()).links
      assert.equal(link?.status, 'completed')
      assert.equal(link?.secureConversationId, result.secureConversationId)

      const secure = await phone.client.getConversation(result.secureConversationId)
      assert.equal(secure.customerId, pivotCustomer)
      const members = secure.members.map((m) => `${m.kind}:${m.id}`).sort()
      assert.deepEqual(
        members,
        [`device:${phone.device.id}`, `device:${tablet.device.id}`, `staff:${bank.agentId}`].sort(),
      )
      const history = await publicMessages(phone.client, result.secureConversationId)
      assert.deepEqual(
        history.map((m) => [m.direction, m.imported]),
        [
          ['inbound', true],
          ['outbound', true],
        ],
      )
      assert.equal(history[0]?.text, 'I want to dispute a payment')
      const { rows } = await sql<{ content_type: string }>`
        select content_type from messages where conversation_id = ${result.secureConversationId}`.execute(server.ctx.db)
      assert.ok(rows.every((r) => r.content_type === 'application/vnd.strongroom.public-channel+sealed'))
      assert.match((await inbox('twilio', PIVOT_PHONE)).at(-1)?.text ?? '', /continues on our secure page/)
      // A second pivot reuses the secure conversation and imports only what is new: here nothing, since the closing
      // note and the new invitation are the bank's own texts about the move.
      const second = await redeem(tablet, await invite())
      assert.equal(second.secureConversationId, result.secureConversationId)
      assert.equal(second.importedMessages, 0)
      const again = await publicMessages(phone.client, result.secureConversationId)
      assert.equal(new Set(again.map((m) => m.text)).size, again.length)
    })

    test('a replayed link fails and changes nothing', async () => {
      const token = await invite()
      await redeem(phone, token)
      const before = await rowCounts()
      const replay = await problemOf(redeem(phone, token))
      assert.equal(replay.type, `${PROBLEMS}pivot/token-used`)
      assert.deepEqual(await rowCounts(), before)
      assert.equal(
        (await problemOf(post('/v1/pivot/open', { token }).then(throwIfProblem))).type,
        `${PROBLEMS}pivot/token-used`,
      )
    })

    test('an expired link fails and changes nothing', async () => {
      const token = await invite()
      await server.ctx.db
        .updateTable('pivot_links')
        .set({ expires_at: new Date(Date.now() - 1000) })
        .where('conversation_id', '=', conversationId)
        .where('completed_at', 'is', null)
        .execute()
      const before = await rowCounts()
      const expired = await problemOf(redeem(phone, token))
      assert.equal(expired.type, `${PROBLEMS}pivot/token-expired`)
      assert.equal(expired.status, 410)
      assert.deepEqual(await rowCounts(), before)
      const links = await agent.request<{ links: { status: string }[] }>(
        'GET',
        `/v1/conversations/${conversationId}/pivot-links`,
      )
      assert.equal(links.links[0]?.status, 'expired')
    })

    test('a new link revokes the older ones still open: they neither open, redeem nor step up, and change nothing', async () => {
      const older = await invite()
      const newer = await invite()
      const before = await rowCounts()
      for (const refused of [
        await problemOf(redeem(phone, older)),
        await problemOf(post('/v1/pivot/open', { token: older }).then(throwIfProblem)),
        await problemOf(post('/v1/pivot/step-up/options', { token: older }).then(throwIfProblem)),
      ]) {
        assert.deepEqual([refused.status, refused.type], [410, `${PROBLEMS}pivot/token-revoked`])
      }
      assert.deepEqual(await rowCounts(), before)
      const links = await agent.request<{ links: { status: string }[] }>(
        'GET',
        `/v1/conversations/${conversationId}/pivot-links`,
      )
      assert.deepEqual(
        links.links.slice(0, 2).map((l) => l.status),
        ['sent', 'revoked'],
      )
      // The newest still works, once.
      await redeem(phone, newer)
      assert.equal((await problemOf(redeem(phone, newer))).type, `${PROBLEMS}pivot/token-used`)
    })

    test("an unknown token or another bank's token is not valid", async () => {
      const unknown = await problemOf(redeem(phone, 'srp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'))
      assert.equal(unknown.type, `${PROBLEMS}pivot/invalid-token`)
      // The other bank's customer texts, is linked, and gets a link: our device cannot use it.
      const otherAgent = new StaffClient({
        baseUrl: server.url,
        credentials: new StaffToken(otherBank.agentToken),
      })
      await customerWrites('twilio', { from: '+447700900888', to: OTHER_BANK_NUMBER, text: 'hello' })
      const foreignConversation = await newestConversation(otherAgent)
      await otherAgent.request('POST', `/v1/conversations/${foreignConversation.id}/public-channel/customer`, {
        customerId: otherBank.customerId,
      })
      await otherAgent.request('POST', `/v1/conversations/${foreignConversation.id}/pivot`, {})
      const foreignToken = tokenOf((await inbox('twilio', '+447700900888')).at(-1))
      const before = await rowCounts()
      const foreign = await problemOf(redeem(phone, foreignToken))
      assert.equal(foreign.type, `${PROBLEMS}pivot/invalid-token`)
      assert.deepEqual(await rowCounts(), before)
    })

    test("a device of another customer is refused, changes nothing, and the link still works for the customer's own", async () => {
      const token = await invite()
      const before = await rowCounts()
      const refused = await problemOf(redeem(stranger, token))
      assert.equal(refused.type, `${PROBLEMS}pivot/wrong-customer`)
      assert.equal(refused.status, 403)
      assert.deepEqual(await rowCounts(), before)
      const links = await agent.request<{ links: { status: string }[] }>(
        'GET',
        `/v1/conversations/${conversationId}/pivot-links`,
      )
      assert.equal(links.links[0]?.status, 'sent')
      await redeem(phone, token)
    })

    test('a staff token cannot redeem a link', async () => {
      const token = await invite()
      const refused = await problemOf(agent.request('POST', '/v1/pivot/redeem', { token }))
      assert.equal(refused.status, 403)
    })

    test('a link from an agent who has left since still lets the customer in', async () => {
      const token = await invite()
      // The agent's groups at the bank's identity provider no longer give them a role.
      const leaves = (roleless_at: Date | null) =>
        server.ctx.db.updateTable('staff').set({ roleless_at }).where('id', '=', bank.agentId).execute()
      await leaves(new Date())
      try {
        const result = await redeem(tablet, token)
        const members = await server.ctx.db
          .selectFrom('conversation_members')
          .select(['member_kind', 'member_id'])
          .where('conversation_id', '=', result.secureConversationId)
          .execute()
        assert.ok(members.some((m) => m.member_kind === 'device' && m.member_id === tablet.device.id))
      } finally {
        await leaves(null)
      }
    })

    test('two redemptions at once: exactly one succeeds', async () => {
      const token = await invite()
      const results = await Promise.allSettled([redeem(phone, token), redeem(tablet, token)])
      const succeeded = results.filter((r) => r.status === 'fulfilled')
      const failed = results.filter((r) => r.status === 'rejected')
      assert.equal(succeeded.length, 1)
      assert.equal(failed.length, 1)
      const reason = (failed[0] as PromiseRejectedResult).reason
      assert.ok(reason instanceof StrongroomError)
      assert.equal(reason.type, `${PROBLEMS}pivot/token-used`)
    })

    test("one calm pivot: DLP's link and the agent's button are one link, one closing text, and the history keeps its times", async () => {
      const CALM_PHONE = '+447700900555'
      const calm = await agent.request<{ id: string }>('POST', '/v1/customers', {
        externalRef: 'CUST-CALM',
        displayName: 'Calm Customer',
        phoneNumber: CALM_PHONE,
      })
      const calmPhone = await enrolFor(calm.id, 'phone')
      const calmTablet = await enrolFor(calm.id, 'tablet')
      await customerWrites('twilio', { from: CALM_PHONE, to: BANK_NUMBER, text: 'Hello, is this the bank?' })
      const publicId = (await newestConversation(agent)).id
      // The customer types a card number: DLP masks it and texts the link by itself.
      await customerWrites('twilio', { from: CALM_PHONE, to: BANK_NUMBER, text: `my card ${PAN}` })
      const automatic = (await agent.listPivotLinks(publicId))[0]
      assert.equal(automatic?.createdBy.kind, 'system')
      // The agent's button, pressed twice: the same live link, nothing sent again.
      for (let i = 0; i < 2; i++) {
        const pressed = await fetch(`${server.url}/v1/conversations/${publicId}/pivot`, {
          method: 'POST',
          headers: { authorization: `Bearer ${bank.agentToken}`, 'content-type': 'application/json' },
          body: '{}',
        })
        assert.equal(pressed.status, 200)
        assert.deepEqual(Object.keys(await pressed.json()), ['link'])
      }
      // Another card number while the link is live sends no second one either.
      await customerWrites('twilio', { from: CALM_PHONE, to: BANK_NUMBER, text: `sorry, it is ${PAN}` })
      const texts = async () => (await inbox('twilio', CALM_PHONE)).map((m) => m.text)
      const links = (list: string[]) => list.filter((text) => /#t=srp_/.test(text))
      assert.equal(links(await texts()).length, 1)
      assert.equal((await agent.listPivotLinks(publicId)).length, 1)
      assert.match(links(await texts())[0] ?? '', /^To continue this conversation on our secure page, /)
      assert.doesNotMatch((await texts()).join('\n'), /app/)

      const token = tokenOf((await inbox('twilio', CALM_PHONE)).find((m) => /#t=srp_/.test(m.text)))
      const first = await redeem(calmPhone, token)
      // The customer's three messages; not the link, and at the times they were written, not the pivot's.
      const thread = await publicMessages(agent, publicId)
      const history = await publicMessages(calmPhone.client, first.secureConversationId)
      assert.deepEqual(
        history.map((m) => m.text),
        thread.filter((m) => m.sender.kind === 'channel').map((m) => m.text),
      )
      assert.deepEqual(
        history.map((m) => m.at),
        thread.filter((m) => m.sender.kind === 'channel').map((m) => m.at),
      )
      const closing = (await texts()).filter((text) => /continues/.test(text))
      assert.deepEqual(closing, [
        'This conversation continues on our secure page. Please do not send personal details here.',
      ])

      // A bank whose links open its app says so; a later move sends its link but no second closing text.
      await admin.request('PUT', '/v1/policies/links', { domains: ['bank.example'], senderIds: [], securePlace: 'app' })
      await customerWrites('twilio', { from: CALM_PHONE, to: BANK_NUMBER, text: 'One more question' })
      const sent = await agent.invitePivot(publicId)
      assert.ok(sent.message, 'the first link was used: a new one is sent')
      const latest = (await inbox('twilio', CALM_PHONE)).at(-1)
      assert.match(latest?.text ?? '', /^To continue this conversation in our app, /)
      await redeem(calmTablet, tokenOf(latest))
      const all = await texts()
      assert.equal(links(all).length, 2)
      assert.equal(all.filter((text) => /continues/.test(text)).length, 1)
      assert.equal(all.length, 3)
      await admin.request('PUT', '/v1/policies/links', { domains: ['bank.example'], senderIds: [] })
    })

    test('the console learns which conversations are on which channel: the SMS thread and the secure conversation it moved to, and only those the caller may see', async () => {
      const completed = (await agent.listPivotLinks(conversationId)).find((l) => l.status === 'completed')
      const secureConversationId = completed?.secureConversationId
      assert.ok(secureConversationId)
      const plain = await agent.createConversation({ customerId: bank.customerId })
      const otherAgent = new StaffClient({
        baseUrl: server.url,
        credentials: new StaffToken(otherBank.agentToken),
      })
      const foreign = await newestConversation(otherAgent)
      const found = await agent.conversationChannels([conversationId, secureConversationId, plain.id, foreign.id])
      const common = {
        connector: 'twilio',
        verifiedSender: null,
        window: { kind: 'none', closesAt: null, reason: 'this channel has no messaging window' },
        customerLinked: true,
        risk: [],
        publicConversationId: conversationId,
        secureConversationId,
      }
      assert.deepEqual(
        found.sort((a, b) => a.kind.localeCompare(b.kind)),
        [
          { conversationId, kind: 'public', ...common },
          { conversationId: secureConversationId, kind: 'secure', ...common },
        ],
      )
      // An agent who is in neither conversation learns nothing of them; a supervisor (conversations:all) sees both.
      const colleague = await bank.staffToken('agent')
      const asColleague = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(colleague.token) })
      assert.deepEqual(await asColleague.conversationChannels([conversationId, secureConversationId]), [])
      const supervisor = await bank.staffToken('supervisor')
      const asSupervisor = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(supervisor.token) })
      assert.equal((await asSupervisor.conversationChannels([conversationId, secureConversationId])).length, 2)
      // Devices do not ask; malformed or too many ids are refused.
      assert.equal(
        (await problemOf(phone.client.request('GET', `/v1/channels/conversations?ids=${secureConversationId}`))).status,
        403,
      )
      const malformed = await problemOf(agent.request('GET', `/v1/channels/conversations?ids=${conversationId},nope`))
      assert.equal(malformed.status, 400)
      const tooMany = Array.from({ length: 101 }, () => conversationId).join(',')
      assert.equal((await problemOf(agent.request('GET', `/v1/channels/conversations?ids=${tooMany}`))).status, 400)
      // The SDK asks in batches the server accepts.
      const many = [...Array.from({ length: 150 }, () => plain.id), conversationId]
      assert.deepEqual(
        (await agent.conversationChannels(many)).map((c) => c.conversationId),
        [conversationId],
      )
    })
  })
})

async function throwIfProblem(result: { status: number; body: unknown }) {
  if (result.status >= 400) throw new StrongroomError(result.body as never)
  return result
}
