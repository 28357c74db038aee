import { createHmac, timingSafeEqual } from 'node:crypto'
import { constantTimeEqual } from './constant-time.ts'
import { SubscriptionVerificationError, WebhookSignatureError } from './errors.ts'

/** `sha256=` and the 32-byte HMAC in hex. */
const SIGNATURE_FORMAT = /^sha256=([0-9a-f]{64})$/i
/** The challenge is echoed back to the caller, so nothing that could be read as markup is accepted. */
const CHALLENGE_FORMAT = /^[\w-]{1,256}$/

/**
 * Checks X-Hub-Signature-256, which Meta sends with every webhook for WhatsApp and Messenger: HMAC-SHA256 of the raw
 * body, keyed with the app secret, in hex after `sha256=`. Throws WebhookSignatureError unless it matches.
 */
export function verifyMetaSignature(
  appSecret: string,
  rawBody: Uint8Array,
  header: string | string[] | undefined,
): void {
  if (header === undefined || header === '') throw new WebhookSignatureError('missing')
  const match = typeof header === 'string' ? SIGNATURE_FORMAT.exec(header) : null
  if (!match?.[1]) throw new WebhookSignatureError('malformed')
  const expected = createHmac('sha256', appSecret).update(rawBody).digest()
  if (!timingSafeEqual(expected, Buffer.from(match[1], 'hex'))) throw new WebhookSignatureError('mismatch')
}

/**
 * Meta's GET handshake when a webhook is subscribed: `hub.mode=subscribe` and our verify token, answered with
 * `hub.challenge` (to be returned as text/plain). Throws SubscriptionVerificationError otherwise.
 */
export function answerMetaSubscription(query: URLSearchParams, verifyToken: string): string {
  const token = query.get('hub.verify_token') ?? ''
  // The token is compared whatever the mode, so a wrong mode and a wrong token take the same time.
  const tokenMatches = constantTimeEqual(token, verifyToken)
  const challenge = query.get('hub.challenge') ?? ''
  if (query.get('hub.mode') !== 'subscribe' || !tokenMatches || !CHALLENGE_FORMAT.test(challenge)) {
    throw new SubscriptionVerificationError()
  }
  return challenge
}
