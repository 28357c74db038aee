import type { PublicChannelConnector } from './channel-protocol.ts'

/**
 * Public-channel conversations (SMS, WhatsApp, Messenger) as a client sees them. Their messages are plaintext by
 * nature: the server seals them at rest with the tenant's key and opens them for whoever may read the conversation,
 * so in the message log and on the stream they carry one of these content types and sealed bytes, and
 * `listPublicMessages` returns their text (DLP-masked where it held card or account data).
 */
export const PUBLIC_MESSAGE_TYPE = 'application/vnd.strongroom.channel-message+sealed'
/** The same, imported into a secure conversation by a pivot: the public-channel history, marked as such. */
export const IMPORTED_HISTORY_TYPE = 'application/vnd.strongroom.public-channel+sealed'

export type {
  ConversationChannel,
  CustomerChannel,
  PivotLink,
  PublicChannelConnector,
  PublicMessage,
  ReportOutcome,
  SentPublicMessage,
  SuspiciousReport,
} from './channel-protocol.ts'

/** Whether a message of the log is a public-channel one (its text comes from `listPublicMessages`). */
export function isPublicChannelMessage(message: { contentType: string }): boolean {
  return message.contentType === PUBLIC_MESSAGE_TYPE || message.contentType === IMPORTED_HISTORY_TYPE
}

/** What a customer calls each channel. */
export const channelNames: Record<PublicChannelConnector, string> = {
  twilio: 'SMS',
  whatsapp: 'WhatsApp',
  messenger: 'Messenger',
  smpp: 'SMS',
  rbm: 'RCS',
}
