import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { after, describe, test } from 'node:test'
import {
  OutsideServiceWindowError,
  ProviderRejectedError,
  ProviderResponseError,
  WebhookPayloadError,
  WebhookSignatureError,
} from './errors.ts'
import { type FakeProvider, recordingSleep, type ScriptedReply, startFakeProvider } from './fake-provider.ts'
import { parseWhatsAppWebhook, SERVICE_WINDOW_MS, whatsAppConnector } from './whatsapp.ts'

const APP_SECRET = 'test-app-secret-wa'
const ACCESS_TOKEN = 'EAAG-test-access-token'
const PHONE_NUMBER_ID = '106540352242922'
const NOW = Date.parse('2026-03-01T12:00:00Z')
const accepted = {
  status: 200,
  json: {
    messaging_product: 'whatsapp',
    contacts: [{ input: '447700900123', wa_id: '447700900123' }],
    messages: [{ id: 'wamid.OUT1' }],
  },
}

const providers: FakeProvider[] = []
after(() => Promise.all(providers.map((p) => p.close())))

async function fake(script: ScriptedReply[]): Promise<FakeProvider> {
  const provider = await startFakeProvider(script)
  providers.push(provider)
  return provider
}

function connector(baseUrl = 'http://127.0.0.1:1', transport = {}) {
  return whatsAppConnector(
    { phoneNumberId: PHONE_NUMBER_ID, accessToken: ACCESS_TOKEN, appSecret: APP_SECRET, apiVersion: 'v23.0', baseUrl },
    { now: () => NOW, ...transport },
  )
}

function signed(payload: unknown) {
  const rawBody = Buffer.from(JSON.stringify(payload))
  const signature = `sha256=${createHmac('sha256', APP_SECRET).update(rawBody).digest('hex')}`
  return { url: 'https://bank.example/channels/whatsapp', headers: { 'x-hub-signature-256': signature }, rawBody }
}

const webhook = (value: Record<string, unknown>, field = 'messages') => ({
  object: 'whatsapp_business_account',
  entry: [
    {
      id: '102290129340398',
      changes: [
        {
          field,
          value: {
            messaging_product: 'whatsapp',
            metadata: { display_phone_number: '442071838750', phone_number_id: PHONE_NUMBER_ID },
            ...value,
          },
        },
      ],
    },
  ],
})

const textMessage = {
  from: '447700900123',
  id: 'wamid.IN1',
  timestamp: '1772366400',
  type: 'text',
  text: { body: 'Is my card blocked?' },
}

describe('WhatsApp webhooks', () => {
  test('a text message becomes an inbound message from the WhatsApp id to our phone-number id', () => {
    const events = connector().receive(
      signed(webhook({ contacts: [{ profile: { name: 'A' }, wa_id: '447700900123' }], messages: [textMessage] })),
    )
    assert.deepEqual(events, {
      messages: [
        {
          providerMessageId: 'wamid.IN1',
          from: '447700900123',
          to: PHONE_NUMBER_ID,
          text: 'Is my card blocked?',
          mediaCount: 0,
          receivedAt: new Date(1772366400 * 1000),
        },
      ],
      receipts: [],
      watermarks: [],
    })
  })

  test('media arrive as their caption and a count; reactions and other types are skipped', () => {
    const events = parseWhatsAppWebhook(
      webhook({
        messages: [
          {
            ...textMessage,
            id: 'wamid.IMG',
            type: 'image',
            image: { id: 'media-1', mime_type: 'image/jpeg', caption: 'receipt' },
          },
          { ...textMessage, id: 'wamid.DOC', type: 'document', document: { id: 'media-2' } },
          { ...textMessage, id: 'wamid.R', type: 'reaction', reaction: { message_id: 'wamid.OUT1', emoji: '👍' } },
        ],
      }),
    )
    assert.deepEqual(
      events.messages.map((m) => [m.providerMessageId, m.text, m.mediaCount]),
      [
        ['wamid.IMG', 'receipt', 1],
        ['wamid.DOC', '', 1],
      ],
    )
  })

  test('statuses become receipts, with the error code of a failure; unknown statuses and other fields are skipped', () => {
    const events = parseWhatsAppWebhook(
      webhook({
        statuses: [
          { id: 'wamid.OUT1', status: 'sent', timestamp: '1772366400', recipient_id: '447700900123' },
          { id: 'wamid.OUT1', status: 'delivered', timestamp: '1772366401', recipient_id: '447700900123' },
          { id: 'wamid.OUT1', status: 'read', timestamp: '1772366402', recipient_id: '447700900123' },
          {
            id: 'wamid.OUT2',
            status: 'failed',
            timestamp: '1772366403',
            recipient_id: '447700900123',
            errors: [{ code: 131047, title: 'Re-engagement message' }],
          },
          { id: 'wamid.OUT3', status: 'deleted', timestamp: '1772366404', recipient_id: '447700900123' },
        ],
      }),
    )
    assert.deepEqual(events.receipts, [
      { providerMessageId: 'wamid.OUT1', status: 'sent' },
      { providerMessageId: 'wamid.OUT1', status: 'delivered' },
      { providerMessageId: 'wamid.OUT1', status: 'read' },
      { providerMessageId: 'wamid.OUT2', status: 'failed', errorCode: '131047' },
    ])
    assert.deepEqual(parseWhatsAppWebhook(webhook({ messages: [textMessage] }, 'message_template_status_update')), {
      messages: [],
      receipts: [],
      watermarks: [],
    })
  })

  test('the signature is checked over the raw body before anything is parsed', () => {
    const request = signed(webhook({ messages: [textMessage] }))
    assert.throws(() => connector().receive({ ...request, headers: {} }), WebhookSignatureError)
    const tampered = Buffer.from(request.rawBody.toString().replace('blocked', 'stolen'))
    assert.throws(() => connector().receive({ ...request, rawBody: tampered }), WebhookSignatureError)
    const notJson = Buffer.from('not json')
    assert.throws(() => connector().receive({ ...request, rawBody: notJson }), WebhookSignatureError)
  })

  test('malformed payloads are payload errors with a fixed reason, never TypeErrors', () => {
    const malformed: [unknown, string][] = [
      [null, 'not an object'],
      [[], 'not an object'],
      [{ object: 'page', entry: [] }, 'not a WhatsApp Business Account event'],
      [{ object: 'whatsapp_business_account', entry: {} }, 'entry is not a list'],
      [{ object: 'whatsapp_business_account', entry: [null] }, 'entry is not an object'],
      [{ object: 'whatsapp_business_account', entry: [{ changes: 'x' }] }, 'changes is not a list'],
      [{ object: 'whatsapp_business_account', entry: [{ changes: [7] }] }, 'change is not an object'],
      [
        { object: 'whatsapp_business_account', entry: [{ changes: [{ field: 'messages' }] }] },
        'change value is not an object',
      ],
      [
        { object: 'whatsapp_business_account', entry: [{ changes: [{ field: 'messages', value: {} }] }] },
        'metadata missing',
      ],
      [webhook({ metadata: {} }), 'phone number id missing'],
      [webhook({ messages: {} }), 'messages is not a list'],
      [webhook({ messages: ['x'] }), 'message is not an object'],
      [webhook({ messages: [{ ...textMessage, id: undefined }] }), 'message id missing'],
      [webhook({ messages: [{ ...textMessage, from: 447700900123 }] }), 'message sender missing'],
      [webhook({ messages: [{ ...textMessage, timestamp: 'yesterday' }] }), 'message timestamp is not a time'],
      [webhook({ messages: [{ ...textMessage, type: undefined }] }), 'message type missing'],
      [webhook({ messages: [{ ...textMessage, text: undefined }] }), 'text message without text'],
      [webhook({ messages: [{ ...textMessage, text: { body: 5 } }] }), 'text message without text'],
      [webhook({ messages: [{ ...textMessage, type: 'image' }] }), 'media message without media'],
      [webhook({ statuses: [{ status: 'sent' }] }), 'status message id missing'],
      [webhook({ statuses: [{ id: 'wamid.X' }] }), 'status missing'],
      [webhook({ statuses: [{ id: 'wamid.X', status: 'failed', errors: 'bad' }] }), 'status errors is not a list'],
      [webhook({ statuses: [{ id: 'wamid.X', status: 'failed', errors: [null] }] }), 'status error is not an object'],
    ]
    for (const [payload, reason] of malformed) {
      assert.throws(
        () => connector().receive(signed(payload)),
        (error) => {
          assert.ok(error instanceof WebhookPayloadError, reason)
          assert.equal(error.reason, reason)
          return true
        },
      )
    }
    const request = signed({})
    const notJson = Buffer.from('{"object":')
    const signature = `sha256=${createHmac('sha256', APP_SECRET).update(notJson).digest('hex')}`
    assert.throws(
      () => connector().receive({ ...request, rawBody: notJson, headers: { 'x-hub-signature-256': signature } }),
      (error) => error instanceof WebhookPayloadError && error.reason === 'body is not JSON',
    )
  })
})

describe('sending on WhatsApp', () => {
  const recently = new Date(NOW - 60 * 60 * 1000)

  test('a text message within the service window: the Cloud API wire format', async () => {
    const provider = await fake([accepted])
    const sent = await connector(provider.baseUrl).send({
      to: '447700900123',
      text: 'Your card is active.',
      idempotencyKey: 'msg-1',
      customerLastMessageAt: recently,
    })
    assert.deepEqual(sent, { providerMessageId: 'wamid.OUT1' })
    const [request] = provider.requests
    assert.ok(request)
    assert.equal(request.method, 'POST')
    const proof = createHmac('sha256', APP_SECRET).update(ACCESS_TOKEN).digest('hex')
    assert.equal(request.path, `/v23.0/${PHONE_NUMBER_ID}/messages?appsecret_proof=${proof}`)
    assert.equal(request.headers.authorization, `Bearer ${ACCESS_TOKEN}`)
    assert.equal(request.headers['content-type'], 'application/json')
    assert.deepEqual(JSON.parse(request.body), {
      messaging_product: 'whatsapp',
      to: '447700900123',
      type: 'text',
      text: { body: 'Your card is active.' },
    })
  })

  test('with a link, an interactive call-to-action URL message', async () => {
    const provider = await fake([accepted])
    await connector(provider.baseUrl).send({
      to: '447700900123',
      text: 'A payment needs your approval.',
      link: { url: 'https://bank.example/approve/abc', label: 'Review payment' },
      idempotencyKey: 'msg-2',
      customerLastMessageAt: recently,
    })
    assert.deepEqual(JSON.parse(provider.requests[0]?.body ?? ''), {
      messaging_product: 'whatsapp',
      to: '447700900123',
      type: 'interactive',
      interactive: {
        type: 'cta_url',
        body: { text: 'A payment needs your approval.' },
        action: {
          name: 'cta_url',
          parameters: { display_text: 'Review payment', url: 'https://bank.example/approve/abc' },
        },
      },
    })
  })

  test('outside the 24-hour window, or with no message from the customer, free-form sends are refused unsent', async () => {
    const provider = await fake([accepted])
    const whatsapp = connector(provider.baseUrl)
    for (const customerLastMessageAt of [
      undefined,
      new Date(NOW - SERVICE_WINDOW_MS),
      new Date(NOW - 3 * SERVICE_WINDOW_MS),
      new Date(Number.NaN),
    ]) {
      const error = await whatsapp
        .send({ to: '447700900123', text: 'hello', idempotencyKey: 'msg-3', customerLastMessageAt })
        .catch((e: unknown) => e)
      assert.ok(error instanceof OutsideServiceWindowError)
      assert.equal(error.code, 'whatsapp/outside-service-window')
      assert.equal(
        error.message,
        'the customer has not written in the last 24 hours: only an approved template may be sent',
      )
    }
    assert.equal(provider.requests.length, 0)
    // One millisecond inside the window is still inside.
    await whatsapp.send({
      to: '447700900123',
      text: 'hello',
      idempotencyKey: 'msg-4',
      customerLastMessageAt: new Date(NOW - SERVICE_WINDOW_MS + 1),
    })
    assert.equal(provider.requests.length, 1)
  })

  test('a template may be sent at any time, its parameters filling the body', async () => {
    const provider = await fake([accepted])
    const whatsapp = connector(provider.baseUrl)
    const sent = await whatsapp.sendTemplate({
      to: '447700900123',
      name: 'payment_approval',
      language: 'en_GB',
      parameters: ['£250.00', 'Acme Ltd'],
    })
    assert.deepEqual(sent, { providerMessageId: 'wamid.OUT1' })
    assert.deepEqual(JSON.parse(provider.requests[0]?.body ?? ''), {
      messaging_product: 'whatsapp',
      to: '447700900123',
      type: 'template',
      template: {
        name: 'payment_approval',
        language: { code: 'en_GB' },
        components: [
          {
            type: 'body',
            parameters: [
              { type: 'text', text: '£250.00' },
              { type: 'text', text: 'Acme Ltd' },
            ],
          },
        ],
      },
    })
    await whatsapp.sendTemplate({ to: '447700900123', name: 'hello_world', language: 'en_US', parameters: [] })
    assert.deepEqual(JSON.parse(provider.requests[1]?.body ?? '').template, {
      name: 'hello_world',
      language: { code: 'en_US' },
    })
  })

  test('outside the window, a message given its template goes out as the template, the link as the URL button', async () => {
    const provider = await fake([accepted])
    await connector(provider.baseUrl).send({
      to: '447700900123',
      text: 'Continue in our secure chat.',
      link: { url: 'https://bank.example/secure/#t=srp_abc', label: 'Continue securely' },
      idempotencyKey: 'msg-5',
      customerLastMessageAt: new Date(NOW - 25 * 3600_000),
      template: {
        name: 'secure_chat_invitation',
        language: 'en_GB',
        parameters: ['bank.example'],
        urlButtonParameter: '#t=srp_abc',
      },
    })
    assert.deepEqual(JSON.parse(provider.requests[0]?.body ?? ''), {
      messaging_product: 'whatsapp',
      to: '447700900123',
      type: 'template',
      template: {
        name: 'secure_chat_invitation',
        language: { code: 'en_GB' },
        components: [
          { type: 'body', parameters: [{ type: 'text', text: 'bank.example' }] },
          { type: 'button', sub_type: 'url', index: '0', parameters: [{ type: 'text', text: '#t=srp_abc' }] },
        ],
      },
    })
  })

  test('503 then success is retried with the same body; a Graph error is final and carries its code only', async () => {
    const flaky = await fake([{ status: 503 }, accepted])
    const { sleep, delays } = recordingSleep()
    await connector(flaky.baseUrl, { sleep }).sendTemplate({
      to: '447700900123',
      name: 't',
      language: 'en',
      parameters: [],
    })
    assert.equal(flaky.requests.length, 2)
    assert.equal(flaky.requests[0]?.body, flaky.requests[1]?.body)
    assert.equal(delays.length, 1)

    const rejecting = await fake([
      {
        status: 400,
        json: { error: { message: '(#131030) Recipient phone number not in allowed list', code: 131030 } },
      },
    ])
    const error = await connector(rejecting.baseUrl, { sleep })
      .send({ to: '447700900123', text: 'x', idempotencyKey: 'k', customerLastMessageAt: recently })
      .catch((e: unknown) => e)
    assert.ok(error instanceof ProviderRejectedError)
    assert.equal(error.providerCode, '131030')
    assert.equal(rejecting.requests.length, 1)
    assert.doesNotMatch(`${error.message} ${JSON.stringify(error)}`, /447700900123|EAAG/)
  })

  test('a success without a message id is an unexpected response', async () => {
    for (const json of [{}, { messages: [] }, { messages: [{}] }, { messages: 'wamid' }]) {
      const provider = await fake([{ status: 200, json }])
      await assert.rejects(
        connector(provider.baseUrl).sendTemplate({ to: '447700900123', name: 't', language: 'en', parameters: [] }),
        ProviderResponseError,
      )
    }
  })
})
