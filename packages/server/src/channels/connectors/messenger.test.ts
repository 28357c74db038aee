import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { after, describe, test } from 'node:test'
import {
  MessengerWindowClosedError,
  ProviderRejectedError,
  ProviderResponseError,
  WebhookPayloadError,
  WebhookSignatureError,
} from './errors.ts'
import { type FakeProvider, recordingSleep, type ScriptedReply, startFakeProvider } from './fake-provider.ts'
import { messengerConnector, parseMessengerWebhook } from './messenger.ts'

const APP_SECRET = 'test-app-secret-fb'
const PAGE_TOKEN = 'EAAB-test-page-token'
const PAGE_ID = '1234567890'
const PSID = '6789012345678901'
const accepted = { status: 200, json: { recipient_id: PSID, message_id: 'm_OUT1' } }

const providers: FakeProvider[] = []
after(() => Promise.all(providers.map((p) => p.close())))

async function fake(script: ScriptedReply[]): Promise<FakeProvider> {
  const provider = await startFakeProvider(script)
  providers.push(provider)
  return provider
}

const connector = (baseUrl = 'http://127.0.0.1:1', transport = {}) =>
  messengerConnector({ accessToken: PAGE_TOKEN, appSecret: APP_SECRET, apiVersion: 'v23.0', baseUrl }, transport)

function signed(payload: unknown) {
  const rawBody = Buffer.from(JSON.stringify(payload))
  const signature = `sha256=${createHmac('sha256', APP_SECRET).update(rawBody).digest('hex')}`
  return { url: 'https://bank.example/channels/messenger', headers: { 'x-hub-signature-256': signature }, rawBody }
}

const webhook = (...messaging: unknown[]) => ({
  object: 'page',
  entry: [{ id: PAGE_ID, time: 1772366400123, messaging }],
})
const from = { sender: { id: PSID }, recipient: { id: PAGE_ID }, timestamp: 1772366400123 }
const textEvent = { ...from, message: { mid: 'm_IN1', text: 'What is my balance?' } }

describe('Messenger webhooks', () => {
  test('a message becomes an inbound message from the page-scoped id to the page', () => {
    assert.deepEqual(connector().receive(signed(webhook(textEvent))), {
      messages: [
        {
          providerMessageId: 'm_IN1',
          from: PSID,
          to: PAGE_ID,
          text: 'What is my balance?',
          mediaCount: 0,
          receivedAt: new Date(1772366400123),
        },
      ],
      receipts: [],
      watermarks: [],
    })
  })

  test('attachments are counted; echoes of our own messages and postbacks are skipped', () => {
    const events = parseMessengerWebhook(
      webhook(
        { ...from, message: { mid: 'm_IMG', attachments: [{ type: 'image', payload: { url: 'https://x/y.jpg' } }] } },
        {
          ...from,
          sender: { id: PAGE_ID },
          recipient: { id: PSID },
          message: { mid: 'm_OUT1', is_echo: true, text: 'hi' },
        },
        { ...from, postback: { title: 'Start', payload: 'START' } },
      ),
    )
    assert.deepEqual(
      events.messages.map((m) => [m.providerMessageId, m.text, m.mediaCount]),
      [['m_IMG', '', 1]],
    )
  })

  test('deliveries with message ids are receipts; without them, and reads, are watermarks', () => {
    const events = parseMessengerWebhook(
      webhook(
        { ...from, delivery: { mids: ['m_OUT1', 'm_OUT2'], watermark: 1772366401000 } },
        { ...from, delivery: { watermark: 1772366402000 } },
        { ...from, read: { watermark: 1772366403000 } },
      ),
    )
    assert.deepEqual(events.receipts, [
      { providerMessageId: 'm_OUT1', status: 'delivered' },
      { providerMessageId: 'm_OUT2', status: 'delivered' },
    ])
    assert.deepEqual(events.watermarks, [
      { recipient: PSID, status: 'delivered', upTo: new Date(1772366402000) },
      { recipient: PSID, status: 'read', upTo: new Date(1772366403000) },
    ])
  })

  test('a missing, malformed or foreign signature, or a tampered body, is refused', () => {
    const request = signed(webhook(textEvent))
    assert.throws(() => connector().receive({ ...request, headers: {} }), WebhookSignatureError)
    assert.throws(
      () => connector().receive({ ...request, headers: { 'x-hub-signature-256': 'sha256=00' } }),
      WebhookSignatureError,
    )
    const tampered = Buffer.from(request.rawBody.toString().replace('balance', 'PIN'))
    assert.throws(() => connector().receive({ ...request, rawBody: tampered }), WebhookSignatureError)
    const otherSecret = messengerConnector({ accessToken: PAGE_TOKEN, appSecret: 'other', apiVersion: 'v23.0' })
    assert.throws(() => otherSecret.receive(request), WebhookSignatureError)
  })

  test('malformed payloads are payload errors with a fixed reason, never TypeErrors', () => {
    const malformed: [unknown, string][] = [
      ['page', 'not an object'],
      [{ object: 'whatsapp_business_account', entry: [] }, 'not a page event'],
      [{ object: 'page', entry: 'x' }, 'entry is not a list'],
      [{ object: 'page', entry: [1] }, 'entry is not an object'],
      [{ object: 'page', entry: [{ messaging: [] }] }, 'page id missing'],
      [{ object: 'page', entry: [{ id: PAGE_ID, messaging: {} }] }, 'messaging is not a list'],
      [webhook(null), 'messaging event is not an object'],
      [webhook({ ...textEvent, sender: undefined }), 'sender missing'],
      [webhook({ ...textEvent, sender: { id: 5 } }), 'sender id missing'],
      [webhook({ ...from, message: 'hi' }), 'message is not an object'],
      [webhook({ ...from, message: { text: 'hi' } }), 'message id missing'],
      [webhook({ ...from, message: { mid: 'm', text: { body: 'hi' } } }), 'message text is not text'],
      [webhook({ ...from, message: { mid: 'm', attachments: {} } }), 'attachments is not a list'],
      [webhook({ ...textEvent, timestamp: '1772366400123' }), 'event timestamp is not a time'],
      [webhook({ ...textEvent, timestamp: -1 }), 'event timestamp is not a time'],
      [webhook({ ...from, delivery: [] }), 'delivery is not an object'],
      [webhook({ ...from, delivery: { mids: 'm_OUT1' } }), 'delivered message ids is not a list'],
      [webhook({ ...from, delivery: { mids: [7] } }), 'delivered message id missing'],
      [webhook({ ...from, delivery: {} }), 'delivery watermark is not a time'],
      [webhook({ ...from, read: null }), 'read is not an object'],
      [webhook({ ...from, read: { watermark: 1.5 } }), 'read watermark is not a time'],
    ]
    for (const [payload, reason] of malformed) {
      assert.throws(
        () => connector().receive(signed(payload)),
        (error) => {
          assert.ok(error instanceof WebhookPayloadError, reason)
          assert.equal(error.code, 'webhook/malformed-payload')
          assert.equal(error.reason, reason)
          return true
        },
      )
    }
  })
})

describe('sending on Messenger', () => {
  test('a text reply: the Send API wire format, the page token as a bearer header and not in the URL', async () => {
    const provider = await fake([accepted])
    const sent = await connector(provider.baseUrl).send({
      to: PSID,
      text: 'Your balance is shown in the app.',
      idempotencyKey: 'k1',
      customerLastMessageAt: new Date(),
    })
    assert.deepEqual(sent, { providerMessageId: 'm_OUT1' })
    const [request] = provider.requests
    assert.ok(request)
    assert.equal(request.method, 'POST')
    const proof = createHmac('sha256', APP_SECRET).update(PAGE_TOKEN).digest('hex')
    assert.equal(request.path, `/v23.0/me/messages?appsecret_proof=${proof}`)
    assert.doesNotMatch(request.path, /access_token|EAAB/)
    assert.equal(request.headers.authorization, `Bearer ${PAGE_TOKEN}`)
    assert.equal(request.headers['content-type'], 'application/json')
    assert.deepEqual(JSON.parse(request.body), {
      recipient: { id: PSID },
      messaging_type: 'RESPONSE',
      message: { text: 'Your balance is shown in the app.' },
    })
  })

  test('with a link, a button template', async () => {
    const provider = await fake([accepted])
    await connector(provider.baseUrl).send({
      to: PSID,
      text: 'A payment needs your approval.',
      link: { url: 'https://bank.example/approve/abc', label: 'Review payment' },
      idempotencyKey: 'k2',
      customerLastMessageAt: new Date(),
    })
    assert.deepEqual(JSON.parse(provider.requests[0]?.body ?? ''), {
      recipient: { id: PSID },
      messaging_type: 'RESPONSE',
      message: {
        attachment: {
          type: 'template',
          payload: {
            template_type: 'button',
            text: 'A payment needs your approval.',
            buttons: [{ type: 'web_url', url: 'https://bank.example/approve/abc', title: 'Review payment' }],
          },
        },
      },
    })
  })

  test('429 with Retry-After then success; a 400 is final; a success without an id is unexpected', async () => {
    const busy = await fake([{ status: 429, headers: { 'retry-after': '2' } }, accepted])
    const { sleep, delays } = recordingSleep()
    await connector(busy.baseUrl, { sleep }).send({
      to: PSID,
      text: 'x',
      idempotencyKey: 'k3',
      customerLastMessageAt: new Date(),
    })
    assert.deepEqual(delays, [2000])
    assert.equal(busy.requests.length, 2)
    assert.equal(busy.requests[0]?.body, busy.requests[1]?.body)

    const outsideWindow = await fake([{ status: 400, json: { error: { code: 10, error_subcode: 2018278 } } }])
    const error = await connector(outsideWindow.baseUrl, { sleep })
      .send({ to: PSID, text: 'x', idempotencyKey: 'k4', customerLastMessageAt: new Date() })
      .catch((e: unknown) => e)
    assert.ok(error instanceof ProviderRejectedError)
    assert.equal(error.providerCode, '10')
    assert.equal(outsideWindow.requests.length, 1)

    const odd = await fake([{ status: 200, json: { recipient_id: PSID } }])
    await assert.rejects(
      connector(odd.baseUrl).send({ to: PSID, text: 'x', idempotencyKey: 'k5', customerLastMessageAt: new Date() }),
      ProviderResponseError,
    )
  })

  test('the 24-hour window: after it, HUMAN_AGENT tagged replies for 7 days where Meta allows them, then nothing', async () => {
    const provider = await fake([accepted])
    const NOW = Date.parse('2026-03-01T12:00:00Z')
    const hoursAgo = (hours: number) => new Date(NOW - hours * 3600_000)
    const page = (humanAgentTag: boolean) =>
      messengerConnector(
        {
          accessToken: PAGE_TOKEN,
          appSecret: APP_SECRET,
          apiVersion: 'v23.0',
          baseUrl: provider.baseUrl,
          humanAgentTag,
        },
        { now: () => NOW },
      )
    const send = (humanAgentTag: boolean, customerLastMessageAt: Date | undefined) =>
      page(humanAgentTag).send({ to: PSID, text: 'x', idempotencyKey: 'k6', customerLastMessageAt })
    for (const [tag, last] of [
      [false, hoursAgo(25)],
      [true, hoursAgo(7 * 24)],
      [true, undefined],
      [true, new Date(Number.NaN)],
    ] as const) {
      await assert.rejects(send(tag, last), MessengerWindowClosedError)
    }
    assert.equal(provider.requests.length, 0)
    await send(true, hoursAgo(25))
    assert.deepEqual(JSON.parse(provider.requests[0]?.body ?? '').messaging_type, 'MESSAGE_TAG')
    assert.deepEqual(JSON.parse(provider.requests[0]?.body ?? '').tag, 'HUMAN_AGENT')
    await send(true, hoursAgo(23))
    assert.deepEqual(JSON.parse(provider.requests[1]?.body ?? '').messaging_type, 'RESPONSE')
    assert.equal(JSON.parse(provider.requests[1]?.body ?? '').tag, undefined)
  })
})
