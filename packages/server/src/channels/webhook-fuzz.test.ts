import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { StaffClient, StaffToken } from '@strongroom/sdk'
import { PUBLIC_MESSAGE_TYPE } from '@strongroom/sdk/protocol'
import fc from 'fast-check'
import { createTestBank, startTestServer, type TestServer } from '../testing/harness.ts'
import { spoiled } from '../testing/hostile-values.ts'
import { computeTwilioSignature } from './connectors/twilio.ts'

/**
 * Property-based fuzzing inside authentic webhook bodies (issue 21): the route fuzzer cannot get past the providers'
 * signatures, so here each body is a real provider's wire format (Twilio's form, Meta's JSON for WhatsApp and
 * Messenger, RBM's signed event in its Pub/Sub envelope) with one place spoiled (NUL, unpaired surrogates, huge
 * text, numbers beyond any column, wrong types, a new key) or with bytes that are not the format at all, and then
 * correctly signed with the channel's secret. Whatever the body says, no answer is a 5xx, every refusal is a problem
 * document, and a refused webhook has stored nothing (no identity, conversation or message half-written).
 */

const RUNS = Number(process.env.FUZZ_RUNS_PER_ROUTE ?? 40)
const SEED = Number(process.env.FUZZ_SEED ?? 21)
const PUBLIC_URL = 'https://bank.example'
const BANK_NUMBER = '+442071838750'
const TWILIO_TOKEN = 'twilio-auth-token-0123456789abcdef'
const WA_PHONE_ID = '106540352242922'
const WA_SECRET = 'whatsapp-app-secret-0123456789'
const PAGE_ID = '998877665544'
const PAGE_SECRET = 'messenger-app-secret-0123456789'
const RBM_AGENT = 'fuzz-bank-agent@rbm.goog'
const RBM_TOKEN = 'rbm-client-token-0123456789'
const CUSTOMER = '+447700900123'

const huge = 'é'.repeat(200_000)

/** Bodies as each provider posts them: a customer's message and a delivery receipt for one of ours. */
const templates = {
  twilio: [
    { MessageSid: 'SM0123', From: CUSTOMER, To: BANK_NUMBER, Body: 'hello', NumMedia: '0', SmsStatus: 'received' },
    { MessageSid: 'SM0456', From: BANK_NUMBER, To: CUSTOMER, MessageStatus: 'delivered', ErrorCode: '30003' },
  ],
  whatsapp: [
    {
      messages: [{ from: '447700900123', id: 'wamid.1', timestamp: '1733500000', type: 'text', text: { body: 'hi' } }],
    },
    { statuses: [{ id: 'wamid.2', status: 'read', timestamp: '1733500000', recipient_id: '447700900123' }] },
  ].map((value) => ({
    object: 'whatsapp_business_account',
    entry: [
      {
        id: 'waba',
        changes: [
          {
            field: 'messages',
            value: { messaging_product: 'whatsapp', metadata: { phone_number_id: WA_PHONE_ID }, ...value },
          },
        ],
      },
    ],
  })),
  messenger: [
    { message: { mid: 'm_1', text: 'hello' } },
    { delivery: { mids: ['m_2'], watermark: 1733500000000 } },
    { read: { watermark: 1733500000000 } },
  ].map((event) => ({
    object: 'page',
    entry: [
      {
        id: PAGE_ID,
        time: 1733500000000,
        messaging: [{ sender: { id: '2468' }, recipient: { id: PAGE_ID }, timestamp: 1733500000000, ...event }],
      },
    ],
  })),
  rbm: [
    { senderPhoneNumber: CUSTOMER, agentId: RBM_AGENT, messageId: 'Ms1', sendTime: '2026-12-06T10:00:00Z', text: 'hi' },
    {
      senderPhoneNumber: CUSTOMER,
      agentId: RBM_AGENT,
      messageId: 'Ms2',
      sendTime: '2026-12-06T10:00:00Z',
      eventType: 'DELIVERED',
      eventId: 'Ev2',
    },
  ],
}
type Connector = keyof typeof templates

/** Text that is not the provider's format at all: cut JSON, invalid UTF-8, NUL, nothing. */
const notTheFormat = fc.constantFrom(
  Buffer.from('{"object":"page","entry":[{"id":"'),
  Buffer.from([0xed, 0xa0, 0x80, 0xff, 0xfe]),
  Buffer.from('\u0000'),
  Buffer.alloc(0),
  Buffer.from('[]'),
  Buffer.from('null'),
  Buffer.from(`{"entry":${'['.repeat(5000)}`),
)

/** A spoiled value as a form field: forms carry text only, raw percent escapes included. */
const formValue = (value: unknown) => (typeof value === 'string' ? value : (JSON.stringify(value) ?? ''))

/** One signed request: the raw body and the headers that authenticate it. */
function signed(connector: Connector, body: unknown): { rawBody: Buffer; headers: Record<string, string> } {
  if (connector === 'twilio') {
    const raw = Buffer.isBuffer(body)
      ? body
      : Buffer.from(
          Object.entries(body as Record<string, unknown>)
            .map(([key, value]) => `${encodeURIComponent(key.replace(/[\ud800-\udfff]/g, ''))}=${escapeForm(value)}`)
            .join('&'),
        )
    // Signed over the parameters as the server reads them, as Twilio signs what it sends.
    const params = new URLSearchParams(raw.toString('utf8'))
    return {
      rawBody: raw,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': computeTwilioSignature(TWILIO_TOKEN, `${PUBLIC_URL}/v1/channels/twilio/webhook`, params),
      },
    }
  }
  if (connector === 'rbm') {
    const event = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body) ?? 'null')
    const envelope = { message: { data: event.toString('base64'), messageId: '1' }, subscription: 'projects/p/s/rbm' }
    return {
      rawBody: Buffer.from(JSON.stringify(envelope)),
      headers: {
        'content-type': 'application/json',
        'x-goog-signature': createHmac('sha512', RBM_TOKEN).update(event).digest('base64'),
      },
    }
  }
  const raw = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body) ?? 'null')
  const secret = connector === 'whatsapp' ? WA_SECRET : PAGE_SECRET
  return {
    rawBody: raw,
    headers: {
      'content-type': 'application/json',
      'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`,
    },
  }
}

/** A form value percent-encoded, except that text already holding percent escapes (`%zz`, `%00`) goes as it is. */
function escapeForm(value: unknown): string {
  const text = formValue(value)
  if (/%/.test(text)) return text
  return encodeURIComponent(text.replace(/[\ud800-\udfff]/g, '%ED%A0%80')).replace(/%25ED%25A0%2580/g, '%ED%A0%80')
}

describe('fuzzing inside correctly signed channel webhooks', () => {
  let server: TestServer

  before(async () => {
    // With the archive member, as a bank runs it: what a signed webhook stores is archived too.
    server = await startTestServer({ publicUrl: PUBLIC_URL })
    const bank = await createTestBank(server, 'Webhook Fuzz Bank')
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    await admin.request('POST', '/v1/customers', { externalRef: 'FUZZ-1', displayName: 'Fuzz', phoneNumber: CUSTOMER })
    const agentId = bank.agentId
    await admin.request('PUT', '/v1/channels/twilio', {
      address: BANK_NUMBER,
      accountSid: `AC${'0'.repeat(31)}1`,
      agentId,
      secrets: { authToken: TWILIO_TOKEN },
    })
    for (const [connector, address, appSecret] of [
      ['whatsapp', WA_PHONE_ID, WA_SECRET],
      ['messenger', PAGE_ID, PAGE_SECRET],
    ] as const) {
      await admin.request('PUT', `/v1/channels/${connector}`, {
        address,
        apiVersion: 'v23.0',
        agentId,
        secrets: { appSecret, accessToken: `${connector}-access-token`, verifyToken: `${connector}-verify-token-123` },
      })
    }
    await admin.request('PUT', '/v1/channels/rbm', {
      address: RBM_AGENT,
      verifiedSender: 'Fuzz Bank',
      agentId,
      secrets: { clientToken: RBM_TOKEN, accessToken: 'rbm-access-token' },
    })
  })
  after(() => server.stop())

  const rowCounts = async () => {
    const counts: number[] = []
    for (const table of ['channel_messages', 'channel_identities', 'conversations', 'messages'] as const) {
      const row = await server.ctx.db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow()
      counts.push(Number(row.n))
    }
    return counts
  }

  for (const connector of Object.keys(templates) as Connector[]) {
    test(`${connector}: authentic signatures over spoiled bodies: zero 5xx, refusals are problems that store nothing`, async () => {
      const valid = fc.constantFrom<unknown>(...templates[connector])
      const body = fc.oneof(
        { weight: 6, arbitrary: spoiled(valid) },
        { weight: 1, arbitrary: valid.map((v) => withHugeText(v)) },
        { weight: 1, arbitrary: notTheFormat },
      )
      const statuses = new Map<number, number>()
      await fc.assert(
        fc.asyncProperty(body, async (candidate) => {
          const { rawBody, headers } = signed(connector, candidate)
          const before = await rowCounts()
          const response = await fetch(`${server.url}/v1/channels/${connector}/webhook`, {
            method: 'POST',
            headers,
            body: new Uint8Array(rawBody),
          })
          const text = await response.text()
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1)
          assert.ok(response.status < 500, `${response.status} ${text}`)
          if (response.status >= 400) {
            assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/, text)
            assert.deepEqual(await rowCounts(), before, `refused with ${response.status} but something was stored`)
          }
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: true },
      )
      console.log(JSON.stringify({ connector, runs: RUNS, statuses: Object.fromEntries(statuses) }))
    })
  }

  test('every public message the spoiled webhooks stored reaches the archive, and the archive member goes idle', async () => {
    // A lone surrogate in a message's text once made its archive record unstorable (RFC 8785 refuses it), and every
    // record after it waited behind it, for ever: the member never went idle and the server never stopped.
    await server.archiveMember?.idle()
    const { stored } = await server.ctx.db
      .selectFrom('messages')
      .select((eb) => eb.fn.countAll<number>().as('stored'))
      .where('content_type', '=', PUBLIC_MESSAGE_TYPE)
      .executeTakeFirstOrThrow()
    const { archived } = await server.ctx.db
      .selectFrom('archive_records')
      .select((eb) => eb.fn.countAll<number>().as('archived'))
      .where('record_class', '=', 'public-message')
      .executeTakeFirstOrThrow()
    assert.ok(Number(stored) > 0)
    assert.equal(Number(archived), Number(stored))
  })
})

/** The template with its text (or every string) replaced by 200,000 characters: under the body limit once encoded. */
function withHugeText(value: unknown): unknown {
  if (typeof value === 'string') return value === 'hello' || value === 'hi' ? huge : value
  if (Array.isArray(value)) return value.map(withHugeText)
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, withHugeText(inner)]))
  }
  return value
}
