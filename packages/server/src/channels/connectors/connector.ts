/**
 * What the conversation layer sees of a public channel (SMS through Twilio or an SMSC over SMPP, WhatsApp,
 * Messenger): inbound messages and delivery receipts (from verified webhooks, or from the SMPP link), and outbound
 * sends. Provider specifics stay in each connector.
 */
export type WebhookConnectorKind = 'twilio' | 'whatsapp' | 'messenger' | 'rbm'
export type ConnectorKind = WebhookConnectorKind | 'smpp'

export interface InboundMessage {
  providerMessageId: string
  /** The customer: a phone number in E.164 (SMS), a WhatsApp id or a page-scoped Messenger id. */
  from: string
  /** Where it arrived: the receiving phone number, the WhatsApp phone-number id or the Facebook page id. */
  to: string
  text: string
  /** Attachments the customer sent; they are not carried across, but the bank should see that there were some. */
  mediaCount: number
  receivedAt: Date
}

export type DeliveryStatus = 'queued' | 'sent' | 'delivered' | 'read' | 'failed'

export interface DeliveryReceipt {
  providerMessageId: string
  status: DeliveryStatus
  /** The provider's error code for a failed delivery. */
  errorCode?: string
}

/**
 * Every message sent to `recipient` up to `upTo` has reached `status`. Messenger reports reads (and deliveries to
 * older clients) this way instead of per message.
 */
export interface DeliveryWatermark {
  recipient: string
  status: 'delivered' | 'read'
  upTo: Date
}

export interface WebhookEvents {
  messages: InboundMessage[]
  receipts: DeliveryReceipt[]
  watermarks: DeliveryWatermark[]
}

/** A provider's POST to us, as received: the body exactly as sent, since the signature covers its bytes. */
export interface WebhookRequest {
  /** The public URL the provider called, with its query string (Twilio signs it). */
  url: string
  /** Header names in lower case, as Node gives them. */
  headers: Record<string, string | string[] | undefined>
  rawBody: Uint8Array
}

export interface OutboundMessage {
  to: string
  text: string
  /** A call-to-action button where the channel has one, else the URL is appended to the text. */
  link?: { url: string; label: string }
  /** The same for every attempt to send this one message, so that a retry cannot send it twice where supported. */
  idempotencyKey: string
  /** When the customer last wrote to us; WhatsApp allows free-form messages only within 24 hours of it. */
  customerLastMessageAt?: Date | undefined
  /** WhatsApp: the approved template to send instead when the customer service window has closed. */
  template?: OutboundTemplate | undefined
}

/** A message template approved at the provider, with the values for its body's {{1}}, {{2}}, … */
export interface OutboundTemplate {
  name: string
  /** The template's language code, such as `en_GB`. */
  language: string
  parameters: string[]
  /** The dynamic part of the template's URL button, when it has one (the rest of the pivot link). */
  urlButtonParameter?: string | undefined
}

export interface SentMessage {
  providerMessageId: string
}

export interface Connector {
  readonly kind: ConnectorKind
  send(message: OutboundMessage): Promise<SentMessage>
}

/** A connector whose provider calls us back over HTTP. */
export interface WebhookConnector extends Connector {
  readonly kind: WebhookConnectorKind
  /** Verifies the request's signature, then parses it; throws WebhookSignatureError or WebhookPayloadError. */
  receive(request: WebhookRequest): WebhookEvents
}

/** SMS has no buttons: a link goes at the end of the text, where phones make it tappable. */
export function smsText(message: Pick<OutboundMessage, 'text' | 'link'>): string {
  return message.link ? `${message.text}\n\n${message.link.label}: ${message.link.url}` : message.text
}
