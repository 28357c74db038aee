import { type Static, type TSchema, Type } from '@sinclair/typebox'

/**
 * The wire formats of public channels and the pivot, shared by the server (which validates and documents them) and
 * the SDK (typed from them). Re-exported by `@strongroom/sdk/protocol`.
 */
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])

export const PublicChannelConnector = Type.Union([
  Type.Literal('twilio'),
  Type.Literal('whatsapp'),
  Type.Literal('messenger'),
  Type.Literal('smpp'),
  Type.Literal('rbm'),
])
export type PublicChannelConnector = Static<typeof PublicChannelConnector>

export const PublicMessageDelivery = Type.Object({
  status: Type.String({ description: 'pending, queued, sent, delivered, read or failed' }),
  errorCode: Nullable(Type.String()),
})

export const PublicMessage = Type.Object({
  id: Type.String(),
  seq: Type.Integer(),
  sender: Type.Object({ kind: Type.String(), id: Type.String() }),
  direction: Type.Union([Type.Literal('inbound'), Type.Literal('outbound')]),
  channel: Type.String(),
  text: Type.String({ description: 'as stored: masked where DLP found card or account data' }),
  masked: Type.Array(Type.String(), { description: 'the kinds of data DLP masked in this text (never the values)' }),
  maskedLater: Type.Boolean({
    description: 'masked after it was received: a later message of the customer completed a card number it began',
  }),
  risk: Type.Array(Type.String(), {
    description: 'smishing and spoofing flags: lookalike-link, link-shortener, spoofed-sender',
  }),
  mediaCount: Type.Integer(),
  linkLabel: Nullable(Type.String()),
  at: Type.String(),
  imported: Type.Boolean({ description: 'public-channel history imported into a secure conversation' }),
  delivery: Type.Union([PublicMessageDelivery, Type.Null()]),
})
export type PublicMessage = Static<typeof PublicMessage>

export const SentPublicMessage = Type.Object({
  messageId: Type.String(),
  seq: Type.Integer(),
  delivery: Type.Object({
    status: Type.String(),
    providerMessageId: Nullable(Type.String()),
    errorCode: Nullable(Type.String()),
  }),
})
export type SentPublicMessage = Static<typeof SentPublicMessage>

export const PivotLink = Type.Object({
  id: Type.String(),
  conversationId: Type.String(),
  status: Type.Union([
    Type.Literal('sent'),
    Type.Literal('opened'),
    Type.Literal('completed'),
    Type.Literal('expired'),
    Type.Literal('revoked'),
  ]),
  createdBy: Type.Object({ kind: Type.String(), id: Nullable(Type.String()) }),
  completedVia: Type.Union(
    [Type.Union([Type.Literal('device'), Type.Literal('passkey'), Type.Literal('sms-otp')]), Type.Null()],
    { description: 'how the customer proved who they were: an enrolled device, a passkey or an SMS code' },
  ),
  expiresAt: Type.String(),
  openedAt: Nullable(Type.String()),
  completedAt: Nullable(Type.String()),
  secureConversationId: Nullable(Type.String()),
  createdAt: Type.String(),
})
export type PivotLink = Static<typeof PivotLink>

export const ConversationChannel = Type.Object({
  conversationId: Type.String(),
  kind: Type.Union([Type.Literal('public'), Type.Literal('secure')], {
    description: 'public: the conversation on the channel; secure: the secure conversation a pivot moved it to',
  }),
  connector: PublicChannelConnector,
  verifiedSender: Nullable(
    Type.String({ description: 'RCS: the business name the customer sees, verified by Google for the RBM agent' }),
  ),
  window: Type.Object({
    kind: Type.Union(
      [
        Type.Literal('open'),
        Type.Literal('human-agent'),
        Type.Literal('template'),
        Type.Literal('closed'),
        Type.Literal('none'),
      ],
      {
        description:
          "the messaging window the bank's next message falls in: open (free text), human-agent (Messenger, tagged " +
          'replies), template (WhatsApp, approved templates only), closed (nothing may be sent), none (SMS, RCS)',
      },
    ),
    closesAt: Nullable(Type.String()),
    reason: Type.String({ description: 'why, in words for the agent' }),
  }),
  customerLinked: Type.Boolean({ description: 'whether the sender is known to be one of the bank’s customers' }),
  risk: Type.Array(Type.String(), {
    description: 'smishing and spoofing flags any message of the public conversation raised',
  }),
  publicConversationId: Type.String(),
  secureConversationId: Nullable(Type.String()),
})
export type ConversationChannel = Static<typeof ConversationChannel>

export const ReportOutcome = Type.Union([Type.Literal('smishing'), Type.Literal('genuine'), Type.Literal('unclear')])
export type ReportOutcome = Static<typeof ReportOutcome>

/** A customer's report of a suspicious message, queued for the bank's staff with the analysis of its links. */
export const SuspiciousReport = Type.Object({
  id: Type.String(),
  source: Type.Union([Type.Literal('sms'), Type.Literal('secure-chat')], {
    description: "sms: forwarded to the bank's number after REPORT; secure-chat: reported from the secure chat or app",
  }),
  conversationId: Nullable(Type.String()),
  customerId: Nullable(Type.String()),
  text: Type.String({ description: 'the reported text, DLP-masked' }),
  flags: Type.Array(Type.String(), { description: 'lookalike-link, link-shortener' }),
  links: Type.Array(
    Type.Object({
      host: Type.String({ description: 'as a person reads it (punycode decoded)' }),
      verdict: Type.String({ description: "bank, lookalike, shortener or other, against the bank's domains" }),
    }),
  ),
  status: Type.Union([Type.Literal('open'), Type.Literal('resolved')]),
  outcome: Nullable(ReportOutcome),
  resolvedBy: Nullable(Type.String()),
  resolvedAt: Nullable(Type.String()),
  createdAt: Type.String(),
})
export type SuspiciousReport = Static<typeof SuspiciousReport>

export { IMPORTED_HISTORY_TYPE, PUBLIC_MESSAGE_TYPE } from './public-channels.ts'
