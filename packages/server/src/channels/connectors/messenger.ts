import type { OutboundMessage, SentMessage, WebhookConnector, WebhookEvents, WebhookRequest } from './connector.ts'
import { MessengerWindowClosedError, ProviderResponseError, WebhookPayloadError } from './errors.ts'
import { type GraphConfig, postToGraph } from './graph.ts'
import { verifyMetaSignature } from './meta.ts'
import { type JsonObject, listIn, objectIn, parseJsonBody, textIn } from './payload.ts'
import type { TransportOptions } from './retry.ts'

/** The page's access token goes in `accessToken`. */
export interface MessengerConfig extends GraphConfig {
  /** Whether Meta granted the page's app the Human Agent permission: agents may then answer for 7 days. */
  humanAgentTag?: boolean
}

/** Messenger's standard window: replies of any kind within 24 hours of the customer's last message. */
const RESPONSE_WINDOW_MS = 24 * 60 * 60 * 1000
/** With the HUMAN_AGENT tag, a person may still answer this long after it. */
export const HUMAN_AGENT_WINDOW_MS = 7 * RESPONSE_WINDOW_MS

/**
 * A Messenger Platform webhook: for each page (entry id), its messaging events. Messages become inbound messages
 * (echoes of our own are skipped), deliveries become receipts per message id, or a watermark when Messenger gives
 * none, and reads become watermarks, as Messenger reports them. Postbacks, reactions and the like are skipped.
 */
export function parseMessengerWebhook(payload: unknown): WebhookEvents {
  const events: WebhookEvents = { messages: [], receipts: [], watermarks: [] }
  const root = objectIn(payload, 'not an object')
  if (root.object !== 'page') throw new WebhookPayloadError('not a page event')
  for (const entryValue of listIn(root.entry, 'entry is not a list')) {
    const entry = objectIn(entryValue, 'entry is not an object')
    const pageId = textIn(entry.id, 'page id missing')
    for (const eventValue of listIn(entry.messaging, 'messaging is not a list')) {
      const event = objectIn(eventValue, 'messaging event is not an object')
      const customer = textIn(objectIn(event.sender, 'sender missing').id, 'sender id missing')
      if (event.message !== undefined) {
        const message = objectIn(event.message, 'message is not an object')
        if (message.is_echo === true) continue
        const text = message.text ?? ''
        if (typeof text !== 'string') throw new WebhookPayloadError('message text is not text')
        events.messages.push({
          providerMessageId: textIn(message.mid, 'message id missing'),
          from: customer,
          to: pageId,
          text,
          mediaCount: listIn(message.attachments, 'attachments is not a list').length,
          receivedAt: instantIn(event.timestamp, 'event timestamp is not a time'),
        })
      } else if (event.delivery !== undefined) {
        const delivery = objectIn(event.delivery, 'delivery is not an object')
        const mids = listIn(delivery.mids, 'delivered message ids is not a list')
        for (const mid of mids) {
          events.receipts.push({ providerMessageId: textIn(mid, 'delivered message id missing'), status: 'delivered' })
        }
        if (mids.length === 0) {
          const upTo = instantIn(delivery.watermark, 'delivery watermark is not a time')
          events.watermarks.push({ recipient: customer, status: 'delivered', upTo })
        }
      } else if (event.read !== undefined) {
        const upTo = instantIn(objectIn(event.read, 'read is not an object').watermark, 'read watermark is not a time')
        events.watermarks.push({ recipient: customer, status: 'read', upTo })
      }
    }
  }
  return events
}

/** Messenger times are milliseconds since the epoch. */
function instantIn(value: unknown, reason: string): Date {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new WebhookPayloadError(reason)
  return new Date(value)
}

/** The Messenger Platform's Send API for one Facebook page. */
export function messengerConnector(config: MessengerConfig, transport: TransportOptions = {}): WebhookConnector {
  const now = transport.now ?? Date.now
  /** RESPONSE within 24 hours, the HUMAN_AGENT tag up to 7 days where allowed; refused before any request after. */
  function messagingType(last: Date | undefined): JsonObject {
    // Written so that an invalid date (NaN) counts as outside.
    const since = last === undefined ? Number.NaN : now() - last.getTime()
    if (since < RESPONSE_WINDOW_MS) return { messaging_type: 'RESPONSE' }
    if (config.humanAgentTag && since < HUMAN_AGENT_WINDOW_MS)
      return { messaging_type: 'MESSAGE_TAG', tag: 'HUMAN_AGENT' }
    throw new MessengerWindowClosedError()
  }
  return {
    kind: 'messenger',
    receive(request: WebhookRequest): WebhookEvents {
      verifyMetaSignature(config.appSecret, request.rawBody, request.headers['x-hub-signature-256'])
      return parseMessengerWebhook(parseJsonBody(request.rawBody))
    },
    async send(message: OutboundMessage): Promise<SentMessage> {
      const type = messagingType(message.customerLastMessageAt)
      const content: JsonObject = message.link
        ? {
            attachment: {
              type: 'template',
              payload: {
                template_type: 'button',
                text: message.text,
                buttons: [{ type: 'web_url', url: message.link.url, title: message.link.label }],
              },
            },
          }
        : { text: message.text }
      const body = await postToGraph(
        config,
        'me/messages',
        { recipient: { id: message.to }, ...type, message: content },
        transport,
      )
      const id = typeof body === 'object' && body !== null && 'message_id' in body ? body.message_id : undefined
      if (typeof id !== 'string' || id === '') throw new ProviderResponseError()
      return { providerMessageId: id }
    },
  }
}
