import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { after, describe, test } from 'node:test'
import type { WebhookRequest } from './connector.ts'
import { ProviderRejectedError, ProviderResponseError, WebhookPayloadError, WebhookSignatureError } from './errors.ts'
import { type FakeProvider, recordingSleep, type ScriptedReply, startFakeProvider } from './fake-provider.ts'
import { computeTwilioSignature, parseTwilioWebhook, twilioConnector, verifyTwilioSignature } from './twilio.ts'

const AUTH_TOKEN = 'test-auth-token-0123456789abcdef'
const ACCOUNT_SID = 'AC00000000000000000000000000000001'
const WEBHOOK_URL = 'https://bank.example/channels/twilio/sms?tenant=acme'
const NOW = Date.parse('2026-03-01T12:00:00Z')

const providers: FakeProvider[] = []
after(() => Promise.all(providers.map((p) => p.close())))

async function fake(script: ScriptedReply[]): Promise<FakeProvider> {
  const provider = await startFakeProvider(script)
  providers.push(provider)
  return provider
}

function signedRequest(fields: Record<string, string>, options: { url?: string; signedUrl?: string } = {}) {
  const params = new URLSearchParams(fields)
  const signature = computeTwilioSignature(AUTH_TOKEN, options.signedUrl ?? WEBHOOK_URL, params)
  return {
    url: options.url ?? WEBHOOK_URL,
    headers: { 'x-twilio-signature': signature },
    rawBody: Buffer.from(params.toString()),
  } satisfies WebhookRequest
}

const inboundSms = {
  MessageSid: 'SM0123456789abcdef0123456789abcdef',
  AccountSid: ACCOUNT_SID,
  From: '+447700900123',
  To: '+442071838750',
  Body: 'Was that payment of £250 to Acme me? Yes',
  NumMedia: '0',
  SmsStatus: 'received',
}

const connector = (transport = {}) =>
  twilioConnector(
    { accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, sender: { from: '+442071838750' } },
    {
      now: () => NOW,
      ...transport,
    },
  )

function signatureFailure(reason: string) {
  return (error: unknown) => {
    assert.ok(error instanceof WebhookSignatureError)
    assert.equal(error.code, 'webhook/invalid-signature')
    assert.equal(error.reason, reason)
    assert.doesNotMatch(error.message, new RegExp(AUTH_TOKEN))
    return true
  }
}

describe('Twilio webhook signatures', () => {
  test("Twilio's documented example: the URL with its query string, then the sorted POST parameters", () => {
    const params = new URLSearchParams({
      CallSid: 'CA1234567890ABCDE',
      Caller: '+12349013030',
      Digits: '1234',
      From: '+12349013030',
      To: '+18005551212',
    })
    const url = 'https://mycompany.com/myapp.php?foo=1&bar=2'
    assert.equal(computeTwilioSignature('12345', url, params), '0/KCTR6DLpKmkAf8muzZqo1nDgQ=')
    assert.doesNotThrow(() => verifyTwilioSignature('12345', url, params, '0/KCTR6DLpKmkAf8muzZqo1nDgQ='))
    // The order the parameters arrive in does not matter; they are sorted by name.
    const reordered = new URLSearchParams([...params].reverse())
    assert.doesNotThrow(() => verifyTwilioSignature('12345', url, reordered, '0/KCTR6DLpKmkAf8muzZqo1nDgQ='))
  })

  test('names sort in byte order (upper case before lower case), repeated names by value', () => {
    const params = new URLSearchParams([
      ['b', '1'],
      ['B', '2'],
      ['a', 'y'],
      ['a', 'x'],
    ])
    // Twilio's algorithm written out here, independently of the signer: the URL, then each name and value in order.
    const expected = createHmac('sha1', AUTH_TOKEN).update('https://x.example/B2axayb1').digest('base64')
    assert.equal(computeTwilioSignature(AUTH_TOKEN, 'https://x.example/', params), expected)
  })

  test('a valid signature is accepted, also when Twilio wrote the default port and we did not, or the reverse', () => {
    const accepted = (request: WebhookRequest) =>
      assert.deepEqual(
        connector()
          .receive(request)
          .messages.map((m) => m.providerMessageId),
        [inboundSms.MessageSid],
      )
    accepted(signedRequest(inboundSms))
    accepted(signedRequest(inboundSms, { signedUrl: 'https://bank.example:443/channels/twilio/sms?tenant=acme' }))
    accepted(signedRequest(inboundSms, { url: 'https://bank.example:443/channels/twilio/sms?tenant=acme' }))
  })

  test('a missing or empty header is refused', () => {
    const request = signedRequest(inboundSms)
    assert.throws(() => connector().receive({ ...request, headers: {} }), signatureFailure('missing'))
    assert.throws(
      () => connector().receive({ ...request, headers: { 'x-twilio-signature': '' } }),
      signatureFailure('missing'),
    )
  })

  test('a header that is not one base64 HMAC-SHA1 is refused as malformed', () => {
    const request = signedRequest(inboundSms)
    const good = request.headers['x-twilio-signature']
    for (const header of ['nope', `${good}x`, 'sha1=abc', [good, good]]) {
      assert.throws(
        () => connector().receive({ ...request, headers: { 'x-twilio-signature': header } }),
        signatureFailure('malformed'),
      )
    }
  })

  test('a signature made with another token, over another URL or other parameters is refused', () => {
    const params = new URLSearchParams(inboundSms)
    const wrongToken = computeTwilioSignature('another-token', WEBHOOK_URL, params)
    assert.throws(
      () => verifyTwilioSignature(AUTH_TOKEN, WEBHOOK_URL, params, wrongToken),
      signatureFailure('mismatch'),
    )

    for (const signedUrl of [
      'https://bank.example/channels/twilio/sms',
      'https://bank.example/channels/twilio/sms?tenant=other',
      'https://bank.example/channels/twilio/status?tenant=acme',
      'http://bank.example/channels/twilio/sms?tenant=acme',
      'https://bank.example:8443/channels/twilio/sms?tenant=acme',
    ]) {
      assert.throws(() => connector().receive(signedRequest(inboundSms, { signedUrl })), signatureFailure('mismatch'))
    }

    const request = signedRequest(inboundSms)
    const tampered = new URLSearchParams(inboundSms)
    tampered.set('Body', 'Was that payment of £250 to Acme me? No')
    assert.throws(
      () => connector().receive({ ...request, rawBody: Buffer.from(tampered.toString()) }),
      signatureFailure('mismatch'),
    )
    tampered.set('Body', inboundSms.Body)
    tampered.append('Extra', '1')
    assert.throws(
      () => connector().receive({ ...request, rawBody: Buffer.from(tampered.toString()) }),
      signatureFailure('mismatch'),
    )
  })

  test('the signature is checked before the payload is read', () => {
    const request = signedRequest({ Body: 'no sid' })
    assert.throws(() => connector().receive({ ...request, headers: {} }), WebhookSignatureError)
  })
})

describe('Twilio webhook payloads', () => {
  test('an incoming SMS becomes an inbound message received now', () => {
    assert.deepEqual(connector().receive(signedRequest(inboundSms)), {
      messages: [
        {
          providerMessageId: 'SM0123456789abcdef0123456789abcdef',
          from: '+447700900123',
          to: '+442071838750',
          text: 'Was that payment of £250 to Acme me? Yes',
          mediaCount: 0,
          receivedAt: new Date(NOW),
        },
      ],
      receipts: [],
      watermarks: [],
    })
  })

  test('an MMS says how many attachments it had; a message with no Body has empty text', () => {
    const { Body: _, ...withoutBody } = inboundSms
    const events = connector().receive(signedRequest({ ...withoutBody, NumMedia: '2' }))
    assert.equal(events.messages[0]?.text, '')
    assert.equal(events.messages[0]?.mediaCount, 2)
  })

  test('status callbacks become receipts, with the error code of a failed delivery', () => {
    const callback = (MessageStatus: string, extra: Record<string, string> = {}) =>
      parseTwilioWebhook(
        new URLSearchParams({ MessageSid: 'SM1', SmsStatus: MessageStatus, MessageStatus, ...extra }),
        new Date(NOW),
      ).receipts
    assert.deepEqual(callback('delivered'), [{ providerMessageId: 'SM1', status: 'delivered' }])
    assert.deepEqual(callback('sent'), [{ providerMessageId: 'SM1', status: 'sent' }])
    assert.deepEqual(callback('queued'), [{ providerMessageId: 'SM1', status: 'queued' }])
    assert.deepEqual(callback('read'), [{ providerMessageId: 'SM1', status: 'read' }])
    assert.deepEqual(callback('undelivered', { ErrorCode: '30003' }), [
      { providerMessageId: 'SM1', status: 'failed', errorCode: '30003' },
    ])
    assert.deepEqual(callback('failed', { ErrorCode: '30007' }), [
      { providerMessageId: 'SM1', status: 'failed', errorCode: '30007' },
    ])
    // Statuses of inbound messages, or ones Twilio adds later, are no receipts of ours.
    assert.deepEqual(callback('received'), [])
    assert.deepEqual(callback('toString'), [])
  })

  test('malformed payloads are payload errors, never TypeErrors', () => {
    const malformed: [Record<string, string> | string, string][] = [
      [{ From: '+447700900123', To: '+442071838750', Body: 'hi' }, 'MessageSid missing'],
      [{ MessageSid: 'SM1', To: '+442071838750', Body: 'hi' }, 'From missing'],
      [{ MessageSid: 'SM1', From: '+447700900123', Body: 'hi' }, 'To missing'],
      [{ ...inboundSms, NumMedia: 'many' }, 'NumMedia is not a count'],
      [{ MessageStatus: 'delivered' }, 'MessageSid missing'],
      ['%%%&&&==', 'MessageSid missing'],
    ]
    for (const [fields, reason] of malformed) {
      const params = new URLSearchParams(fields)
      const request = {
        url: WEBHOOK_URL,
        headers: { 'x-twilio-signature': computeTwilioSignature(AUTH_TOKEN, WEBHOOK_URL, params) },
        rawBody: Buffer.from(typeof fields === 'string' ? fields : params.toString()),
      }
      assert.throws(
        () => connector().receive(request),
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

describe('sending SMS through Twilio', () => {
  const created = { status: 201, json: { sid: 'SM99999999999999999999999999999999', status: 'queued' } }

  test('the Messages API is called form-encoded with Basic auth and the idempotency token', async () => {
    const provider = await fake([created])
    const twilio = twilioConnector({
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      sender: { from: '+442071838750' },
      statusCallbackUrl: 'https://bank.example/channels/twilio/status?tenant=acme',
      baseUrl: provider.baseUrl,
    })
    const sent = await twilio.send({ to: '+447700900123', text: 'Your code is 123456', idempotencyKey: 'msg-42' })
    assert.deepEqual(sent, { providerMessageId: 'SM99999999999999999999999999999999' })
    assert.equal(provider.requests.length, 1)
    const [request] = provider.requests
    assert.ok(request)
    assert.equal(request.method, 'POST')
    assert.equal(request.path, `/2010-04-01/Accounts/${ACCOUNT_SID}/Messages.json`)
    assert.equal(
      request.headers.authorization,
      `Basic ${Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64')}`,
    )
    assert.equal(request.headers['content-type'], 'application/x-www-form-urlencoded')
    assert.equal(request.headers['i-twilio-idempotency-token'], 'msg-42')
    assert.deepEqual(Object.fromEntries(new URLSearchParams(request.body)), {
      To: '+447700900123',
      From: '+442071838750',
      Body: 'Your code is 123456',
      StatusCallback: 'https://bank.example/channels/twilio/status?tenant=acme',
    })
  })

  test('a Messaging Service sends instead of a number, and a link is appended to the text', async () => {
    const provider = await fake([created])
    const twilio = twilioConnector({
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      sender: { messagingServiceSid: 'MG00000000000000000000000000000001' },
      baseUrl: `${provider.baseUrl}/`,
    })
    await twilio.send({
      to: '+447700900123',
      text: 'A payment needs your approval.',
      link: { url: 'https://bank.example/approve/abc', label: 'Review it' },
      idempotencyKey: 'msg-43',
    })
    assert.deepEqual(Object.fromEntries(new URLSearchParams(provider.requests[0]?.body)), {
      To: '+447700900123',
      MessagingServiceSid: 'MG00000000000000000000000000000001',
      Body: 'A payment needs your approval.\n\nReview it: https://bank.example/approve/abc',
    })
  })

  test('503 then success: retried with the same idempotency token, one token per logical message', async () => {
    const provider = await fake([{ status: 503 }, { status: 503 }, created])
    const { sleep, delays } = recordingSleep()
    const twilio = twilioConnector(
      { accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, sender: { from: '+442071838750' }, baseUrl: provider.baseUrl },
      { sleep },
    )
    await twilio.send({ to: '+447700900123', text: 'hello', idempotencyKey: 'msg-44' })
    assert.equal(provider.requests.length, 3)
    assert.equal(delays.length, 2)
    // Node joins a repeated header with commas, so equality also shows it was sent once per request.
    for (const request of provider.requests) {
      assert.equal(request.headers['i-twilio-idempotency-token'], 'msg-44')
      assert.equal(request.body, provider.requests[0]?.body)
    }
  })

  test("a 400 is not retried, and the error carries Twilio's code but not the number or the token", async () => {
    const provider = await fake([
      {
        status: 400,
        json: { code: 21211, message: "The 'To' number +447700900123 is not a valid phone number.", status: 400 },
      },
    ])
    const { sleep, delays } = recordingSleep()
    const twilio = twilioConnector(
      { accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, sender: { from: '+442071838750' }, baseUrl: provider.baseUrl },
      { sleep },
    )
    const error = await twilio.send({ to: '+447700900123', text: 'x', idempotencyKey: 'msg-45' }).catch((e) => e)
    assert.ok(error instanceof ProviderRejectedError)
    assert.equal(error.providerCode, '21211')
    assert.equal(provider.requests.length, 1)
    assert.deepEqual(delays, [])
    const everything = `${error.message} ${JSON.stringify(error)} ${String(error.stack)}`
    assert.doesNotMatch(everything, /447700900123|test-auth-token|AC0000/)
  })

  test('a success without a message sid is an unexpected response, not a crash', async () => {
    for (const reply of [{ status: 201, json: { status: 'queued' } }, { status: 201 }, { status: 200, json: [1] }]) {
      const provider = await fake([reply])
      const twilio = twilioConnector({
        accountSid: ACCOUNT_SID,
        authToken: AUTH_TOKEN,
        sender: { from: '+442071838750' },
        baseUrl: provider.baseUrl,
      })
      await assert.rejects(twilio.send({ to: '+447700900123', text: 'x', idempotencyKey: 'k' }), ProviderResponseError)
    }
  })
})
