import { createHmac } from 'node:crypto'
import {
  type DeliveryReceipt,
  type DeliveryStatus,
  type InboundMessage,
  type OutboundMessage,
  type SentMessage,
  smsText,
  type WebhookConnector,
  type WebhookEvents,
  type WebhookRequest,
} from './connector.ts'
import { constantTimeEqual } from './constant-time.ts'
import { ProviderResponseError, WebhookPayloadError, WebhookSignatureError } from './errors.ts'
import { sendWithRetries, type TransportOptions } from './retry.ts'

export interface TwilioConfig {
  accountSid: string
  authToken: string
  /** The sending number in E.164, or a Messaging Service that picks one. */
  sender: { from: string } | { messagingServiceSid: string }
  /** Where Twilio posts delivery status callbacks for the messages we send. */
  statusCallbackUrl?: string
  /** https://api.twilio.com unless set (tests point it at a local fake). */
  baseUrl?: string
}

const DEFAULT_BASE_URL = 'https://api.twilio.com'
/** HMAC-SHA1 is 20 bytes: 28 characters of base64. */
const SIGNATURE_FORMAT = /^[A-Za-z0-9+/]{27}=$/

/**
 * The X-Twilio-Signature of a form-encoded webhook: HMAC-SHA1 keyed with the auth token over the full URL (query
 * string included) followed by each POST parameter's name and value, sorted by name in byte order, in base64.
 * Repeated parameters contribute each value, in sorted order, as Twilio's own libraries do.
 */
export function computeTwilioSignature(authToken: string, url: string, params: URLSearchParams): string {
  const names = [...new Set(params.keys())].sort(byCodeUnits)
  let signed = url
  for (const name of names) {
    for (const value of params.getAll(name).sort(byCodeUnits)) signed += name + value
  }
  return createHmac('sha1', authToken).update(signed, 'utf8').digest('base64')
}

/** Throws WebhookSignatureError unless `header` is the signature of this URL and these parameters. */
export function verifyTwilioSignature(
  authToken: string,
  url: string,
  params: URLSearchParams,
  header: string | string[] | undefined,
): void {
  if (header === undefined || header === '') throw new WebhookSignatureError('missing')
  if (typeof header !== 'string' || !SIGNATURE_FORMAT.test(header)) throw new WebhookSignatureError('malformed')
  // Every candidate is compared, so the time taken does not tell which one matched.
  let matched = false
  for (const candidate of withAndWithoutDefaultPort(url)) {
    if (constantTimeEqual(computeTwilioSignature(authToken, candidate, params), header)) matched = true
  }
  if (!matched) throw new WebhookSignatureError('mismatch')
}

/**
 * Twilio may sign an https URL with or without an explicit :443 (and http with :80) depending on how it was
 * configured, so both spellings are accepted, as Twilio's libraries do. Nothing else about the URL is normalised.
 */
function withAndWithoutDefaultPort(url: string): string[] {
  const match = /^(https?):\/\/([^/?#:@[\]]+)(?::(\d+))?(.*)$/is.exec(url)
  if (!match) return [url]
  const [, scheme = '', host = '', port, rest = ''] = match
  const defaultPort = scheme.toLowerCase() === 'https' ? '443' : '80'
  if (port === undefined) return [url, `${scheme}://${host}:${defaultPort}${rest}`]
  if (port === defaultPort) return [url, `${scheme}://${host}${rest}`]
  return [url]
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Twilio's message statuses in ours; statuses of inbound messages (receiving, received) are not receipts. */
const STATUSES: Record<string, DeliveryStatus> = {
  accepted: 'queued',
  scheduled: 'queued',
  queued: 'queued',
  sending: 'queued',
  sent: 'sent',
  delivered: 'delivered',
  read: 'read',
  undelivered: 'failed',
  failed: 'failed',
  canceled: 'failed',
}

/**
 * A form-encoded Twilio messaging webhook: a status callback (it carries MessageStatus) becomes a receipt, anything
 * else is an incoming message. Twilio does not say when the message arrived, so `receivedAt` is now.
 */
export function parseTwilioWebhook(params: URLSearchParams, receivedAt: Date): WebhookEvents {
  const events: WebhookEvents = { messages: [], receipts: [], watermarks: [] }
  const messageStatus = params.get('MessageStatus')
  if (messageStatus !== null) {
    const receipt = parseStatusCallback(params, messageStatus)
    if (receipt) events.receipts.push(receipt)
  } else {
    events.messages.push(parseInboundMessage(params, receivedAt))
  }
  return events
}

function parseInboundMessage(params: URLSearchParams, receivedAt: Date): InboundMessage {
  const numMedia = params.get('NumMedia') ?? '0'
  if (!/^\d{1,3}$/.test(numMedia)) throw new WebhookPayloadError('NumMedia is not a count')
  return {
    providerMessageId: requiredParam(params, 'MessageSid'),
    from: requiredParam(params, 'From'),
    to: requiredParam(params, 'To'),
    text: params.get('Body') ?? '',
    mediaCount: Number(numMedia),
    receivedAt,
  }
}

function parseStatusCallback(params: URLSearchParams, messageStatus: string): DeliveryReceipt | undefined {
  const providerMessageId = requiredParam(params, 'MessageSid')
  const status = Object.hasOwn(STATUSES, messageStatus) ? STATUSES[messageStatus] : undefined
  if (status === undefined) return undefined
  const errorCode = params.get('ErrorCode')
  return errorCode ? { providerMessageId, status, errorCode } : { providerMessageId, status }
}

function requiredParam(params: URLSearchParams, name: 'MessageSid' | 'From' | 'To'): string {
  const value = params.get(name)
  if (!value) throw new WebhookPayloadError(`${name} missing`)
  return value
}

/** SMS through Twilio's Programmable Messaging API. */
export function twilioConnector(config: TwilioConfig, transport: TransportOptions = {}): WebhookConnector {
  const baseUrl = (config.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, '')
  const now = transport.now ?? Date.now
  return {
    kind: 'twilio',
    receive(request: WebhookRequest): WebhookEvents {
      const params = new URLSearchParams(Buffer.from(request.rawBody).toString('utf8'))
      verifyTwilioSignature(config.authToken, request.url, params, request.headers['x-twilio-signature'])
      return parseTwilioWebhook(params, new Date(now()))
    },
    async send(message: OutboundMessage): Promise<SentMessage> {
      const form = new URLSearchParams({ To: message.to })
      if ('from' in config.sender) form.set('From', config.sender.from)
      else form.set('MessagingServiceSid', config.sender.messagingServiceSid)
      form.set('Body', smsText(message))
      if (config.statusCallbackUrl) form.set('StatusCallback', config.statusCallbackUrl)
      const credentials = Buffer.from(`${config.accountSid}:${config.authToken}`).toString('base64')
      const body = await sendWithRetries(
        {
          url: `${baseUrl}/2010-04-01/Accounts/${encodeURIComponent(config.accountSid)}/Messages.json`,
          headers: {
            authorization: `Basic ${credentials}`,
            'content-type': 'application/x-www-form-urlencoded',
            accept: 'application/json',
            'i-twilio-idempotency-token': message.idempotencyKey,
          },
          body: form.toString(),
        },
        transport,
      )
      const sid = typeof body === 'object' && body !== null && 'sid' in body ? body.sid : undefined
      if (typeof sid !== 'string' || sid === '') throw new ProviderResponseError()
      return { providerMessageId: sid }
    },
  }
}
