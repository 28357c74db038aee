import type {
  DeliveryReceipt,
  DeliveryStatus,
  InboundMessage,
  OutboundMessage,
  OutboundTemplate,
  SentMessage,
  WebhookConnector,
  WebhookEvents,
  WebhookRequest,
} from './connector.ts'
import { OutsideServiceWindowError, ProviderResponseError, WebhookPayloadError } from './errors.ts'
import { type GraphConfig, postToGraph } from './graph.ts'
import { verifyMetaSignature } from './meta.ts'
import { type JsonObject, listIn, objectIn, parseJsonBody, textIn } from './payload.ts'
import type { TransportOptions } from './retry.ts'

export interface WhatsAppConfig extends GraphConfig {
  /** The business phone number's id in the WhatsApp Cloud API (not the number itself). */
  phoneNumberId: string
}

/** A message template approved in WhatsApp Manager, to one customer. */
export type TemplateMessage = OutboundTemplate & { to: string }

export interface WhatsAppConnector extends WebhookConnector {
  /** Allowed at any time, unlike `send`: templates are how a business opens a conversation. */
  sendTemplate(message: TemplateMessage): Promise<SentMessage>
}

/** Free-form messages are allowed only this long after the customer's last message (the customer service window). */
export const SERVICE_WINDOW_MS = 24 * 60 * 60 * 1000

const STATUSES: Record<string, DeliveryStatus> = {
  sent: 'sent',
  delivered: 'delivered',
  read: 'read',
  failed: 'failed',
}
/** Message types whose content is an attachment, with an optional caption. */
const MEDIA_TYPES = new Set(['image', 'video', 'audio', 'document', 'sticker'])

/**
 * A WhatsApp Cloud API webhook: the `messages` changes of each entry, whose value holds the receiving phone-number id,
 * incoming messages and statuses of the messages we sent. Other fields (template or account updates) are ignored.
 */
export function parseWhatsAppWebhook(payload: unknown): WebhookEvents {
  const events: WebhookEvents = { messages: [], receipts: [], watermarks: [] }
  const root = objectIn(payload, 'not an object')
  if (root.object !== 'whatsapp_business_account')
    throw new WebhookPayloadError('not a WhatsApp Business Account event')
  for (const entry of listIn(root.entry, 'entry is not a list')) {
    for (const change of listIn(objectIn(entry, 'entry is not an object').changes, 'changes is not a list')) {
      const { field, value } = objectIn(change, 'change is not an object')
      if (field !== 'messages') continue
      const content = objectIn(value, 'change value is not an object')
      const phoneNumberId = textIn(
        objectIn(content.metadata, 'metadata missing').phone_number_id,
        'phone number id missing',
      )
      for (const message of listIn(content.messages, 'messages is not a list')) {
        const inbound = parseMessage(objectIn(message, 'message is not an object'), phoneNumberId)
        if (inbound) events.messages.push(inbound)
      }
      for (const status of listIn(content.statuses, 'statuses is not a list')) {
        const receipt = parseStatus(objectIn(status, 'status is not an object'))
        if (receipt) events.receipts.push(receipt)
      }
    }
  }
  return events
}

/** Text and media messages; reactions, locations, contacts and the like have nothing for the bank to read. */
function parseMessage(message: JsonObject, phoneNumberId: string): InboundMessage | undefined {
  const providerMessageId = textIn(message.id, 'message id missing')
  const from = textIn(message.from, 'message sender missing')
  const timestamp = textIn(message.timestamp, 'message timestamp missing')
  if (!/^\d{1,12}$/.test(timestamp)) throw new WebhookPayloadError('message timestamp is not a time')
  const receivedAt = new Date(Number(timestamp) * 1000)
  const type = textIn(message.type, 'message type missing')
  if (type === 'text') {
    const body = objectIn(message.text, 'text message without text').body
    if (typeof body !== 'string') throw new WebhookPayloadError('text message without text')
    return { providerMessageId, from, to: phoneNumberId, text: body, mediaCount: 0, receivedAt }
  }
  if (MEDIA_TYPES.has(type)) {
    const caption = objectIn(message[type], 'media message without media').caption
    const text = typeof caption === 'string' ? caption : ''
    return { providerMessageId, from, to: phoneNumberId, text, mediaCount: 1, receivedAt }
  }
  return undefined
}

/** Statuses Meta may add (such as `deleted`) are no receipts of ours. */
function parseStatus(status: JsonObject): DeliveryReceipt | undefined {
  const providerMessageId = textIn(status.id, 'status message id missing')
  const name = textIn(status.status, 'status missing')
  const mapped = Object.hasOwn(STATUSES, name) ? STATUSES[name] : undefined
  if (mapped === undefined) return undefined
  const [firstError] = listIn(status.errors, 'status errors is not a list')
  const code = firstError === undefined ? undefined : objectIn(firstError, 'status error is not an object').code
  if (typeof code === 'number' || (typeof code === 'string' && code !== '')) {
    return { providerMessageId, status: mapped, errorCode: String(code) }
  }
  return { providerMessageId, status: mapped }
}

/** The WhatsApp Cloud API for one business phone number. */
export function whatsAppConnector(config: WhatsAppConfig, transport: TransportOptions = {}): WhatsAppConnector {
  const now = transport.now ?? Date.now
  const path = `${encodeURIComponent(config.phoneNumberId)}/messages`

  async function post(payload: unknown): Promise<SentMessage> {
    const body = await postToGraph(config, path, payload, transport)
    const messages = typeof body === 'object' && body !== null && 'messages' in body ? body.messages : undefined
    const [first] = Array.isArray(messages) ? messages : []
    const id = typeof first === 'object' && first !== null && 'id' in first ? first.id : undefined
    if (typeof id !== 'string' || id === '') throw new ProviderResponseError()
    return { providerMessageId: id }
  }

  return {
    kind: 'whatsapp',
    receive(request: WebhookRequest): WebhookEvents {
      verifyMetaSignature(config.appSecret, request.rawBody, request.headers['x-hub-signature-256'])
      return parseWhatsAppWebhook(parseJsonBody(request.rawBody))
    },
    async send(message: OutboundMessage): Promise<SentMessage> {
      // Checked before any request: Meta would accept the message and only later report it failed (error 131047).
      // Written so that an invalid date (NaN) also counts as outside.
      const last = message.customerLastMessageAt
      const withinWindow = last !== undefined && now() - last.getTime() < SERVICE_WINDOW_MS
      if (!withinWindow && message.template) return this.sendTemplate({ to: message.to, ...message.template })
      if (!withinWindow) throw new OutsideServiceWindowError()
      if (!message.link) {
        return post({ messaging_product: 'whatsapp', to: message.to, type: 'text', text: { body: message.text } })
      }
      return post({
        messaging_product: 'whatsapp',
        to: message.to,
        type: 'interactive',
        interactive: {
          type: 'cta_url',
          body: { text: message.text },
          action: { name: 'cta_url', parameters: { display_text: message.link.label, url: message.link.url } },
        },
      })
    },
    sendTemplate(message: TemplateMessage): Promise<SentMessage> {
      const template: JsonObject = { name: message.name, language: { code: message.language } }
      const components: JsonObject[] = []
      if (message.parameters.length > 0) {
        components.push({ type: 'body', parameters: message.parameters.map((text) => ({ type: 'text', text })) })
      }
      if (message.urlButtonParameter !== undefined) {
        const parameters = [{ type: 'text', text: message.urlButtonParameter }]
        components.push({ type: 'button', sub_type: 'url', index: '0', parameters })
      }
      if (components.length > 0) template.components = components
      return post({ messaging_product: 'whatsapp', to: message.to, type: 'template', template })
    },
  }
}
