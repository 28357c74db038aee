import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { after, describe, test } from 'node:test'
import { ProviderRejectedError, ProviderResponseError, WebhookPayloadError, WebhookSignatureError } from './errors.ts'
import { type FakeProvider, recordingSleep, type ScriptedReply, startFakeProvider } from './fake-provider.ts'
import { parseRbmEvent, rbmConnector, rbmWebhookAgent } from './rbm.ts'

const CLIENT_TOKEN = 'test-rbm-client-token'
const ACCESS_TOKEN = 'ya29.test-access-token'
const AGENT_ID = 'bank-agent@rbm.goog'
const PHONE = '+447700900123'

const providers: FakeProvider[] = []
after(() => Promise.all(providers.map((p) => p.close())))

async function fake(script: ScriptedReply[]): Promise<FakeProvider> {
  const provider = await startFakeProvider(script)
  providers.push(provider)
  return provider
}

const connector = (baseUrl = 'http://127.0.0.1:1', transport = {}, clientToken = CLIENT_TOKEN) =>
  rbmConnector({ agentId: AGENT_ID, accessToken: async () => ACCESS_TOKEN, clientToken, baseUrl }, transport)

const accepted = (messageId: string) => ({
  status: 200,
  json: { name: `phones/${PHONE}/agentMessages/${messageId}`, sendTime: '2026-03-01T12:00:00.123456Z' },
})

/** A webhook as RBM posts it: the event base64 in a Pub/Sub-style envelope, signed over the event's bytes. */
function signed(event: unknown, token = CLIENT_TOKEN) {
  const data = Buffer.from(JSON.stringify(event))
  const rawBody = Buffer.from(
    JSON.stringify({
      message: { data: data.toString('base64'), messageId: '1234', publishTime: '2026-03-01T12:00:00Z' },
      subscription: 'projects/rbm-bank/subscriptions/rbm-bank-agent',
    }),
  )
  const signature = createHmac('sha512', token).update(data).digest('base64')
  return { url: 'https://bank.example/v1/channels/rbm/webhook', headers: { 'x-goog-signature': signature }, rawBody }
}

const base = { senderPhoneNumber: PHONE, agentId: AGENT_ID, sendTime: '2026-03-01T12:00:00.123456789Z' }
const textEvent = { ...base, messageId: 'MsIN1', text: 'Is this really my bank?' }

describe('RBM webhooks', () => {
  test('a user message becomes an inbound message from the phone number to the agent', () => {
    assert.deepEqual(connector().receive(signed(textEvent)), {
      messages: [
        {
          providerMessageId: 'MsIN1',
          from: PHONE,
          to: AGENT_ID,
          text: 'Is this really my bank?',
          mediaCount: 0,
          receivedAt: new Date('2026-03-01T12:00:00.123Z'),
        },
      ],
      receipts: [],
      watermarks: [],
    })
    assert.equal(rbmWebhookAgent(signed(textEvent).rawBody), AGENT_ID)
  })

  test('delivered and read events are receipts of our message; files count, typing and taps are skipped', () => {
    const delivered = parseRbmEvent({ ...base, eventType: 'DELIVERED', eventId: 'E1', messageId: 'k1' })
    const read = parseRbmEvent({ ...base, eventType: 'READ', eventId: 'E2', messageId: 'k1' })
    const typing = parseRbmEvent({ ...base, eventType: 'IS_TYPING', eventId: 'E3', messageId: 'k1' })
    assert.deepEqual(
      [...delivered.receipts, ...read.receipts, ...typing.receipts],
      [
        { providerMessageId: 'k1', status: 'delivered' },
        { providerMessageId: 'k1', status: 'read' },
      ],
    )
    const file = parseRbmEvent({ ...base, messageId: 'MsF', userFile: { payload: { mimeType: 'image/jpeg' } } })
    assert.deepEqual(
      file.messages.map((m) => [m.text, m.mediaCount]),
      [['', 1]],
    )
    const tap = parseRbmEvent({ ...base, messageId: 'MsT', suggestionResponse: { postbackData: 'open_link' } })
    assert.deepEqual(tap.messages, [])
  })

  test('a missing, malformed or foreign signature, or a tampered event, is refused', () => {
    const request = signed(textEvent)
    assert.throws(() => connector().receive({ ...request, headers: {} }), /signature missing/)
    assert.throws(
      () => connector().receive({ ...request, headers: { 'x-goog-signature': 'c2lnbmF0dXJl' } }),
      /signature malformed/,
    )
    const forged = signed({ ...textEvent, text: 'Send me your PIN' }, 'attacker-token')
    assert.throws(() => connector().receive(forged), /signature mismatch/)
    // The signature of one event over another's envelope.
    const other = signed({ ...textEvent, text: 'Send me your PIN' })
    assert.throws(
      () => connector().receive({ ...other, headers: request.headers }),
      (error) => error instanceof WebhookSignatureError && error.reason === 'mismatch',
    )
    assert.throws(() => connector('http://127.0.0.1:1', {}, 'other').receive(request), WebhookSignatureError)
  })

  test('malformed payloads are payload errors with a fixed reason, never TypeErrors', () => {
    const signature = { 'x-goog-signature': `${'A'.repeat(86)}==` }
    const envelopes: [string, string][] = [
      ['not json', 'body is not JSON'],
      ['[]', 'not an object'],
      ['{}', 'message missing'],
      ['{"message":{}}', 'data missing'],
      ['{"message":{"data":"%%%"}}', 'data is not base64'],
    ]
    for (const [body, reason] of envelopes) {
      assert.throws(
        () => connector().receive({ url: '', headers: signature, rawBody: Buffer.from(body) }),
        (error) => error instanceof WebhookPayloadError && error.reason === reason,
        reason,
      )
    }
    const events: [unknown, string][] = [
      ['hi', 'event is not an object'],
      [{ ...textEvent, messageId: undefined }, 'message id missing'],
      [{ ...textEvent, senderPhoneNumber: 7 }, 'sender missing'],
      [{ ...textEvent, agentId: '' }, 'agent id missing'],
      [{ ...textEvent, sendTime: '1772366400' }, 'message time is not a time'],
      [{ ...textEvent, text: { body: 'hi' } }, 'message text is not text'],
      [{ ...base, messageId: 'MsF', userFile: 'x' }, 'user file is not an object'],
      [{ ...base, messageId: 'k1', eventType: '' }, 'event type missing'],
    ]
    for (const [event, reason] of events) {
      assert.throws(
        () => connector().receive(signed(event)),
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

describe('sending on RBM', () => {
  test('text: the agentMessages wire format, our message id and the agent in the query, a bearer token', async () => {
    const provider = await fake([accepted('k1')])
    const sent = await connector(provider.baseUrl).send({
      to: PHONE,
      text: 'Hello from your bank.',
      idempotencyKey: 'k1',
    })
    assert.deepEqual(sent, { providerMessageId: 'k1' })
    const [request] = provider.requests
    assert.ok(request)
    assert.equal(request.method, 'POST')
    assert.equal(request.path, '/v1/phones/%2B447700900123/agentMessages?messageId=k1&agentId=bank-agent%40rbm.goog')
    assert.equal(request.headers.authorization, `Bearer ${ACCESS_TOKEN}`)
    assert.equal(request.headers['content-type'], 'application/json')
    assert.deepEqual(JSON.parse(request.body), { contentMessage: { text: 'Hello from your bank.' } })
  })

  test('with a link, a rich card whose open-URL suggestion opens it (label cut to RBM 25 characters)', async () => {
    const provider = await fake([accepted('k2')])
    await connector(provider.baseUrl).send({
      to: PHONE,
      text: 'Continue in our secure chat.',
      link: { url: 'https://bank.example/p/abc', label: 'Open the secure chat of your bank now' },
      idempotencyKey: 'k2',
    })
    assert.deepEqual(JSON.parse(provider.requests[0]?.body ?? ''), {
      contentMessage: {
        richCard: {
          standaloneCard: {
            cardOrientation: 'VERTICAL',
            cardContent: {
              description: 'Continue in our secure chat.',
              suggestions: [
                {
                  action: {
                    text: 'Open the secure chat of y',
                    postbackData: 'open_link',
                    openUrlAction: { url: 'https://bank.example/p/abc' },
                  },
                },
              ],
            },
          },
        },
      },
    })
  })

  test('503 then success sends the same message id; 404 (not RCS-capable) is final; an odd answer is unexpected', async () => {
    const busy = await fake([{ status: 503 }, accepted('k3')])
    const { sleep, delays } = recordingSleep()
    await connector(busy.baseUrl, { sleep, random: () => 0 }).send({ to: PHONE, text: 'x', idempotencyKey: 'k3' })
    assert.equal(delays.length, 1)
    assert.equal(busy.requests.length, 2)
    assert.equal(busy.requests[0]?.path, busy.requests[1]?.path)

    const notRcs = await fake([{ status: 404, json: { error: { code: 404, status: 'NOT_FOUND' } } }])
    const error = await connector(notRcs.baseUrl, { sleep })
      .send({ to: PHONE, text: 'x', idempotencyKey: 'k4' })
      .catch((e: unknown) => e)
    assert.ok(error instanceof ProviderRejectedError)
    assert.equal(error.status, 404)
    assert.equal(notRcs.requests.length, 1)

    const odd = await fake([accepted('someone-else')])
    await assert.rejects(
      connector(odd.baseUrl).send({ to: PHONE, text: 'x', idempotencyKey: 'k5' }),
      ProviderResponseError,
    )
  })
})
