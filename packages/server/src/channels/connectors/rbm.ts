import { createHmac, timingSafeEqual } from 'node:crypto'
import type {
  DeliveryReceipt,
  InboundMessage,
  OutboundMessage,
  SentMessage,
  WebhookConnector,
  WebhookEvents,
  WebhookRequest,
} from './connector.ts'
import {
  ProviderResponseError,
  SubscriptionVerificationError,
  WebhookPayloadError,
  WebhookSignatureError,
} from './errors.ts'
import { type JsonObject, objectIn, parseJsonBody, textIn } from './payload.ts'
import { sendWithRetries, type TransportOptions } from './retry.ts'

/** Google's RCS Business Messaging API for one RBM agent. */
export interface RbmConfig {
  /** The agent's id, such as `bank-agent@rbm.goog`: where customers' messages arrive. */
  agentId: string
  /**
   * An OAuth 2.0 access token of the agent's service account (scope `rcsbusinessmessaging`), asked for each send:
   * from the service account's key through a cache (google-access-tokens.ts), or a fixed one (the simulator).
   */
  accessToken: () => Promise<string>
  /** The client token set on the webhook in the RBM developer console: it keys X-Goog-Signature. */
  clientToken: string
  /** https://rcsbusinessmessaging.googleapis.com unless set (tests and the simulator point it at a fake). */
  baseUrl?: string
}

const DEFAULT_BASE_URL = 'https://rcsbusinessmessaging.googleapis.com'
/** Base64 of a 64-byte HMAC-SHA512. */
const SIGNATURE_FORMAT = /^[A-Za-z0-9+/]{86}==$/
/** RBM limits a suggestion's text to 25 characters. */
const SUGGESTION_TEXT_MAX = 25

/**
 * Checks X-Goog-Signature, which RBM sends with every webhook: HMAC-SHA512, keyed with the webhook's client token, of
 * the event's bytes (the base64 `message.data` decoded), itself base64. This is Google's own check in "Verify incoming
 * messages" of https://developers.google.com/business-communications/rcs-business-messaging/guides/integrate/webhooks
 * (its Node sample: `Buffer.from(message.data, 'base64')`, `createHmac('sha512', CLIENT_TOKEN)`, `digest('base64')`,
 * compared with the header). Throws WebhookSignatureError unless it matches; the event's bytes are returned so that
 * what is parsed is exactly what was signed.
 */
export function verifyRbmSignature(
  clientToken: string,
  rawBody: Uint8Array,
  header: string | string[] | undefined,
): Uint8Array {
  if (header === undefined || header === '') throw new WebhookSignatureError('missing')
  if (typeof header !== 'string' || !SIGNATURE_FORMAT.test(header)) throw new WebhookSignatureError('malformed')
  const data = textIn(
    objectIn(objectIn(parseJsonBody(rawBody), 'not an object').message, 'message missing').data,
    'data missing',
  )
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data)) throw new WebhookPayloadError('data is not base64')
  const event = Buffer.from(data, 'base64')
  const expected = createHmac('sha512', clientToken).update(event).digest()
  if (!timingSafeEqual(expected, Buffer.from(header, 'base64'))) throw new WebhookSignatureError('mismatch')
  return event
}

/** The agent a webhook is for, read before the signature is checked only to find whose client token checks it. */
export function rbmWebhookAgent(rawBody: Uint8Array): string | undefined {
  try {
    const data = objectIn(objectIn(parseJsonBody(rawBody), '').message, '').data
    if (typeof data !== 'string') return undefined
    const agentId = objectIn(JSON.parse(Buffer.from(data, 'base64').toString('utf8')), '').agentId
    return typeof agentId === 'string' && agentId !== '' ? agentId : undefined
  } catch {
    return undefined
  }
}

/**
 * One RBM event (the decoded `message.data`): a customer's message (text, or a file counted as an attachment), or an
 * event about one of ours (DELIVERED, READ). Typing indicators, suggestion taps and locations carry nothing to store.
 */
export function parseRbmEvent(event: unknown): WebhookEvents {
  const events: WebhookEvents = { messages: [], receipts: [], watermarks: [] }
  const root = objectIn(event, 'event is not an object')
  const messageId = textIn(root.messageId, 'message id missing')
  const from = textIn(root.senderPhoneNumber, 'sender missing')
  const agentId = textIn(root.agentId, 'agent id missing')
  if (root.eventType !== undefined) {
    const receipt = receiptOf(textIn(root.eventType, 'event type missing'), messageId)
    if (receipt) events.receipts.push(receipt)
    return events
  }
  const receivedAt = instantIn(root.sendTime)
  const inbound = (text: string, mediaCount: number): InboundMessage => ({
    providerMessageId: messageId,
    from,
    to: agentId,
    text,
    mediaCount,
    receivedAt,
  })
  if (root.text !== undefined) {
    if (typeof root.text !== 'string') throw new WebhookPayloadError('message text is not text')
    events.messages.push(inbound(root.text, 0))
  } else if (root.userFile !== undefined) {
    objectIn(root.userFile, 'user file is not an object')
    events.messages.push(inbound('', 1))
  }
  return events
}

function receiptOf(eventType: string, messageId: string): DeliveryReceipt | undefined {
  if (eventType === 'DELIVERED') return { providerMessageId: messageId, status: 'delivered' }
  if (eventType === 'READ') return { providerMessageId: messageId, status: 'read' }
  return undefined
}

/** RFC 3339 with up to nanoseconds, as Google's APIs write times; kept to the millisecond. */
function instantIn(value: unknown): Date {
  const match = typeof value === 'string' ? /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{1,9})?Z$/.exec(value) : null
  const time = match ? Date.parse(`${match[1]}${(match[2] ?? '').slice(0, 4)}Z`) : Number.NaN
  if (Number.isNaN(time)) throw new WebhookPayloadError('message time is not a time')
  return new Date(time)
}

/** The agent message: plain text, or a rich card whose open-URL suggestion carries the link. */
function contentMessage(message: OutboundMessage): JsonObject {
  if (!message.link) return { text: message.text }
  const label = message.link.label.slice(0, SUGGESTION_TEXT_MAX)
  return {
    richCard: {
      standaloneCard: {
        cardOrientation: 'VERTICAL',
        cardContent: {
          description: message.text,
          suggestions: [
            { action: { text: label, postbackData: 'open_link', openUrlAction: { url: message.link.url } } },
          ],
        },
      },
    },
  }
}

/** The RBM API for one agent: receives its webhooks, sends agent messages to a phone number. */
export function rbmConnector(config: RbmConfig, transport: TransportOptions = {}): WebhookConnector {
  const baseUrl = (config.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, '')
  return {
    kind: 'rbm',
    receive(request: WebhookRequest): WebhookEvents {
      const event = verifyRbmSignature(config.clientToken, request.rawBody, request.headers['x-goog-signature'])
      return parseRbmEvent(parseJsonBody(event))
    },
    async send(message: OutboundMessage): Promise<SentMessage> {
      // The message id is ours to choose: the same for every attempt, so RBM refuses a second copy (409).
      const messageId = message.idempotencyKey
      const query = new URLSearchParams({ messageId, agentId: config.agentId })
      const body = await sendWithRetries(
        {
          url: `${baseUrl}/v1/phones/${encodeURIComponent(message.to)}/agentMessages?${query}`,
          headers: { authorization: `Bearer ${await config.accessToken()}`, 'content-type': 'application/json' },
          body: JSON.stringify({ contentMessage: contentMessage(message) }),
        },
        transport,
      )
      const name = typeof body === 'object' && body !== null && 'name' in body ? body.name : undefined
      if (typeof name !== 'string' || !name.endsWith(`/agentMessages/${messageId}`)) throw new ProviderResponseError()
      return { providerMessageId: messageId }
    },
  }
}

/**
 * RBM's webhook verification body, `{"clientToken": …, "secret": …}`, read for the token (to find whose it is) and the
 * secret to echo; throws SubscriptionVerificationError for anything else.
 */
export function answerRbmVerification(rawBody: Uint8Array): { clientToken: string; secret: string } {
  try {
    const { clientToken, secret } = objectIn(parseJsonBody(rawBody), '')
    // The secret is echoed back, so nothing that could be read as markup is accepted.
    if (
      typeof clientToken === 'string' &&
      clientToken !== '' &&
      typeof secret === 'string' &&
      /^[\w-]{1,256}$/.test(secret)
    ) {
      return { clientToken, secret }
    }
  } catch {
    // A body that is not the handshake is refused like a wrong token.
  }
  throw new SubscriptionVerificationError()
}
