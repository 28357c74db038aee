import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { describe, test } from 'node:test'
import { SubscriptionVerificationError, WebhookSignatureError } from './errors.ts'
import { answerMetaSubscription, verifyMetaSignature } from './meta.ts'

const APP_SECRET = 'test-app-secret-0123456789'
const body = Buffer.from('{"object":"page","entry":[]}')
const signature = (secret: string, bytes: Uint8Array) =>
  `sha256=${createHmac('sha256', secret).update(bytes).digest('hex')}`

function refusedFor(reason: string) {
  return (error: unknown) => {
    assert.ok(error instanceof WebhookSignatureError)
    assert.equal(error.code, 'webhook/invalid-signature')
    assert.equal(error.reason, reason)
    assert.doesNotMatch(error.message, new RegExp(APP_SECRET))
    return true
  }
}

describe('Meta webhook signatures (X-Hub-Signature-256)', () => {
  test('an HMAC-SHA256 of the raw body with the app secret is accepted, in either hex case', () => {
    assert.doesNotThrow(() => verifyMetaSignature(APP_SECRET, body, signature(APP_SECRET, body)))
    const upper = `sha256=${signature(APP_SECRET, body).slice(7).toUpperCase()}`
    assert.doesNotThrow(() => verifyMetaSignature(APP_SECRET, body, upper))
  })

  test('a known value: HMAC-SHA256 of "hello" keyed with "secret", and not with a digit changed', () => {
    const known = 'sha256=88aab3ede8d3adf94d26ab90d3bafd4a2083070c3bcce9c014ee04a443847c0b'
    assert.doesNotThrow(() => verifyMetaSignature('secret', Buffer.from('hello'), known))
    assert.throws(
      () => verifyMetaSignature('secret', Buffer.from('hello'), `${known.slice(0, -1)}c`),
      refusedFor('mismatch'),
    )
  })

  test('a missing or empty header is refused', () => {
    assert.throws(() => verifyMetaSignature(APP_SECRET, body, undefined), refusedFor('missing'))
    assert.throws(() => verifyMetaSignature(APP_SECRET, body, ''), refusedFor('missing'))
  })

  test('anything but sha256= and 64 hex digits is malformed', () => {
    const good = signature(APP_SECRET, body)
    for (const header of [
      good.slice(7),
      `sha1=${good.slice(7)}`,
      good.slice(0, -1),
      `${good}00`,
      `sha256=${'z'.repeat(64)}`,
      ` ${good}`,
      [good, good],
    ]) {
      assert.throws(() => verifyMetaSignature(APP_SECRET, body, header), refusedFor('malformed'))
    }
  })

  test('a tampered body or another secret is a mismatch', () => {
    const good = signature(APP_SECRET, body)
    assert.throws(
      () => verifyMetaSignature(APP_SECRET, Buffer.from('{"object":"page","entry":[{}]}'), good),
      refusedFor('mismatch'),
    )
    // The signature covers the bytes as sent: the same JSON re-serialised differently does not verify.
    assert.throws(
      () => verifyMetaSignature(APP_SECRET, Buffer.from('{"object": "page", "entry": []}'), good),
      refusedFor('mismatch'),
    )
    assert.throws(() => verifyMetaSignature(APP_SECRET, body, signature('other', body)), refusedFor('mismatch'))
  })
})

describe("Meta's subscription handshake", () => {
  const query = (fields: Record<string, string>) => new URLSearchParams(fields)

  test('subscribe with our verify token is answered with the challenge', () => {
    const answer = answerMetaSubscription(
      query({ 'hub.mode': 'subscribe', 'hub.verify_token': 'our-verify-token', 'hub.challenge': '1158201444' }),
      'our-verify-token',
    )
    assert.equal(answer, '1158201444')
  })

  test('a wrong or missing token, another mode, or a missing or unsafe challenge is refused', () => {
    const refused: Record<string, string>[] = [
      { 'hub.mode': 'subscribe', 'hub.verify_token': 'wrong', 'hub.challenge': '1' },
      { 'hub.mode': 'subscribe', 'hub.verify_token': 'our-verify-token-x', 'hub.challenge': '1' },
      { 'hub.mode': 'subscribe', 'hub.verify_token': '', 'hub.challenge': '1' },
      { 'hub.mode': 'subscribe', 'hub.challenge': '1' },
      { 'hub.mode': 'unsubscribe', 'hub.verify_token': 'our-verify-token', 'hub.challenge': '1' },
      { 'hub.verify_token': 'our-verify-token', 'hub.challenge': '1' },
      { 'hub.mode': 'subscribe', 'hub.verify_token': 'our-verify-token' },
      { 'hub.mode': 'subscribe', 'hub.verify_token': 'our-verify-token', 'hub.challenge': '<script>x</script>' },
    ]
    for (const fields of refused) {
      assert.throws(
        () => answerMetaSubscription(query(fields), 'our-verify-token'),
        (error) => {
          assert.ok(error instanceof SubscriptionVerificationError)
          assert.equal(error.code, 'webhook/verification-refused')
          assert.equal(error.message, 'webhook subscription verification refused')
          return true
        },
      )
    }
  })
})
