import { type Static, type TSchema, Type } from '@sinclair/typebox'
import { PasskeyAssertion, PasskeyRequestOptions } from './auth-protocol.ts'
import { Enrolment } from './identity-protocol.ts'
import { idOf, oneOf } from './schema-helpers.ts'

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
export const PublicMessageList = Type.Object({ messages: Type.Array(PublicMessage) })

/** Which of a conversation's public-channel messages to read, in order. */
export const PublicMessageListQuery = Type.Object(
  {
    after: Type.Optional(Type.Integer({ minimum: 0 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  },
  { additionalProperties: false },
)
export type PublicMessageListQuery = Static<typeof PublicMessageListQuery>

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
export const PivotLinkList = Type.Object({ links: Type.Array(PivotLink) })

/** The link already live in a conversation, which was not sent again. */
export const LivePivotLink = Type.Object({ link: PivotLink })
/** A new link, and the message that carried it to the customer. */
export const SentPivotLink = Type.Object({ link: PivotLink, message: SentPublicMessage })
/** The same, for a customer who had not written: with the conversation it went into. */
export const LiveCustomerPivotLink = Type.Object({ conversationId: Type.String(), link: PivotLink })
export const SentCustomerPivotLink = Type.Object({
  conversationId: Type.String(),
  link: PivotLink,
  message: SentPublicMessage,
})
/** A conversation started with a customer who had not written, and its first message. */
export const OutreachStarted = Type.Object({ conversationId: Type.String(), message: SentPublicMessage })

/** A pivot link the secure page opened: it can still be used until then. */
export const PivotLinkOpened = Type.Object({ expiresAt: Type.String() })

/** How the customer can step up: passkey options for `navigator.credentials.get` (null without a passkey), SMS. */
export const PivotStepUpOptions = Type.Object({
  expiresAt: Type.String({ description: 'when the link expires' }),
  passkey: Type.Union([PasskeyRequestOptions, Type.Null()], {
    description: 'for navigator.credentials.get as `publicKey`; null when the customer has no passkey',
  }),
  sms: Type.Boolean({ description: "a code can be sent to the customer's number on file" }),
})
export type PivotStepUpOptions = Static<typeof PivotStepUpOptions>

/** A fresh factor of the link's customer, with which a browser that is not enrolled steps up. */
export const PivotFactor = Type.Union([
  Type.Object(
    { kind: Type.Literal('passkey'), assertion: PasskeyAssertion },
    { additionalProperties: false, description: 'navigator.credentials.get with the step-up options, toJSON()' },
  ),
  Type.Object(
    { kind: Type.Literal('sms-otp'), code: Type.String({ pattern: '^[0-9]{6}$' }) },
    { additionalProperties: false, description: 'the code POST /v1/pivot/step-up/sms sent' },
  ),
])
export type PivotFactor = Static<typeof PivotFactor>

/** What redeeming a link did: the secure conversation the chat continues in, and how many messages moved into it. */
export const PivotRedemption = Type.Object({ secureConversationId: Type.String(), importedMessages: Type.Integer() })
export type PivotRedemption = Static<typeof PivotRedemption>

/** A browser enrolled with a pivot link and a fresh factor: the new device, and the link redeemed. */
export const PivotEnrolment = Type.Object({ ...Enrolment.properties, ...PivotRedemption.properties })

/** Which messaging window the bank's next message on a channel falls in (WhatsApp's 24 hours, Messenger's tag). */
export const MessagingWindow = Type.Object({
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
})
export type MessagingWindow = Static<typeof MessagingWindow>

export const ConversationChannel = Type.Object({
  conversationId: Type.String(),
  kind: Type.Union([Type.Literal('public'), Type.Literal('secure')], {
    description: 'public: the conversation on the channel; secure: the secure conversation a pivot moved it to',
  }),
  connector: PublicChannelConnector,
  verifiedSender: Nullable(
    Type.String({ description: 'RCS: the business name the customer sees, verified by Google for the RBM agent' }),
  ),
  window: MessagingWindow,
  customerLinked: Type.Boolean({ description: 'whether the sender is known to be one of the bank’s customers' }),
  risk: Type.Array(Type.String(), {
    description: 'smishing and spoofing flags any message of the public conversation raised',
  }),
  publicConversationId: Type.String(),
  secureConversationId: Nullable(Type.String()),
})
export type ConversationChannel = Static<typeof ConversationChannel>
export const ConversationChannelList = Type.Object({ conversations: Type.Array(ConversationChannel) })

const CONVERSATION_ID = 'cnv_[A-Za-z0-9_-]{22}'

/** The conversations whose public channel a lookup asks for (`GET /v1/channels/conversations`). */
export const ConversationChannelQuery = Type.Object(
  {
    ids: Type.String({
      pattern: `^${CONVERSATION_ID}(,${CONVERSATION_ID}){0,99}$`,
      description: 'up to 100 conversation ids, comma-separated',
    }),
  },
  { additionalProperties: false },
)
export type ConversationChannelQuery = Static<typeof ConversationChannelQuery>

/** A public channel as a way for an agent to write to a customer first (a new conversation, or a secure link). */
export const CustomerChannel = Type.Object({
  connector: PublicChannelConnector,
  conversationId: Nullable(
    Type.String({
      description: 'the conversation the customer already has on this channel, when the caller may see it',
    }),
  ),
  window: MessagingWindow,
  templates: Type.Array(Type.Union([Type.Literal('pivot'), Type.Literal('message')]), {
    description: 'WhatsApp: the purposes the bank registered an approved template for (used outside the 24 hours)',
  }),
  unreachable: Nullable(
    Type.String({
      description:
        'why the bank cannot write to this customer here: no phone number on file, no Messenger conversation yet, ' +
        "or another agent's conversation",
    }),
  ),
})
export type CustomerChannel = Static<typeof CustomerChannel>
export const CustomerChannelList = Type.Object({ channels: Type.Array(CustomerChannel) })

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
export const SuspiciousReportList = Type.Object({ reports: Type.Array(SuspiciousReport) })

/** Which reports of suspicious messages to list: the open ones (the queue, by default) or the resolved. */
export const SuspiciousReportListQuery = Type.Object(
  {
    status: Type.Optional(oneOf(['open', 'resolved'] as const)),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
  },
  { additionalProperties: false },
)
export type SuspiciousReportListQuery = Static<typeof SuspiciousReportListQuery>
/** A report received from a customer: its id in the queue. */
export const ReportReceived = Type.Object({ id: Type.String() })

export { IMPORTED_HISTORY_TYPE, PUBLIC_MESSAGE_TYPE } from './public-channels.ts'

/** A text for the conversation's public channel (`POST /v1/conversations/:conversationId/public-messages`); the same clientMessageId never sends twice. */
export const PublicMessageText = Type.Object(
  {
    clientMessageId: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9._:-]+$' }),
    text: Type.String({ minLength: 1, maxLength: 4096 }),
  },
  { additionalProperties: false },
)
export type PublicMessageText = Static<typeof PublicMessageText>

/** A suspicious message the customer received, as received (`POST /v1/suspicious-reports`). */
export const SuspiciousMessage = Type.Object(
  { text: Type.String({ minLength: 1, maxLength: 4096, description: 'the message as received' }) },
  { additionalProperties: false },
)
export type SuspiciousMessage = Static<typeof SuspiciousMessage>

/** What staff found in a reported message (`POST /v1/suspicious-reports/:reportId/resolve`). */
export const ReportResolution = Type.Object({ outcome: ReportOutcome }, { additionalProperties: false })
export type ReportResolution = Static<typeof ReportResolution>

/** A first text to a customer on a channel they have (`POST /v1/customers/:customerId/public-messages`). */
export const OutreachMessage = Type.Object(
  { connector: PublicChannelConnector, ...PublicMessageText.properties },
  { additionalProperties: false },
)
export type OutreachMessage = Static<typeof OutreachMessage>

/** A pivot link's token, as its page sends it (`POST /v1/pivot/open`, `redeem`, `step-up/options`, `step-up/sms`). */
export const PivotToken = Type.Object(
  { token: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_-]+$' }) },
  { additionalProperties: false },
)
export type PivotToken = Static<typeof PivotToken>

/** Inviting a conversation's customer to the secure channel (`POST /v1/conversations/:conversationId/pivot`). */
export const PivotInvitation = Type.Optional(
  Type.Object(
    {
      ttlSeconds: Type.Optional(Type.Integer({ minimum: 30, maximum: 3600 })),
      replace: Type.Optional(Type.Boolean({ description: 'send a new link even if one is live' })),
    },
    { additionalProperties: false },
  ),
)
export type PivotInvitation = Static<typeof PivotInvitation>

/** Sending a customer who has not written a secure link on a channel they have (`POST /v1/customers/:customerId/pivot`). */
export const CustomerPivotInvitation = Type.Object(
  {
    connector: PublicChannelConnector,
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 30, maximum: 3600 })),
  },
  { additionalProperties: false },
)
export type CustomerPivotInvitation = Static<typeof CustomerPivotInvitation>

/** Stepping up with a pivot link and a fresh factor of its customer, to enrol the browser (`POST /v1/pivot/enrol`). */
export const PivotStepUpEnrolment = Type.Object(
  {
    token: PivotToken.properties.token,
    label: Type.String({ minLength: 1, maxLength: 100 }),
    factor: PivotFactor,
  },
  { additionalProperties: false },
)
export type PivotStepUpEnrolment = Static<typeof PivotStepUpEnrolment>

// ── Administration: the public channels' configuration, DLP, link and WhatsApp template policies ──

const ChannelSecret = Type.String({ minLength: 8, maxLength: 1024 })
/** A public channel as staff see it: its settings, never its secrets, and the state of this node's SMPP link. */
export const ChannelSettings = Type.Object({
  connector: Type.String(),
  address: Type.String(),
  accountSid: Type.Optional(Type.String()),
  apiVersion: Type.Optional(Type.String()),
  agentId: Type.Optional(Type.String()),
  host: Type.Optional(Type.String()),
  port: Type.Optional(Type.Integer()),
  tls: Type.Optional(Type.Boolean()),
  systemId: Type.Optional(Type.String()),
  systemType: Type.Optional(Type.String()),
  verifiedSender: Type.Optional(Type.String()),
  humanAgentTag: Type.Optional(Type.Boolean()),
  link: Type.Optional(
    Type.String({
      description: "SMPP: this node's link to the SMSC: connecting, bound, disconnected, bind-refused or closed",
    }),
  ),
  secretsSet: Type.Array(Type.String(), { description: 'which secrets are stored; their values are never returned' }),
  updatedAt: Type.String(),
})
export type ChannelSettings = Static<typeof ChannelSettings>
export const ChannelSettingsList = Type.Object({ channels: Type.Array(ChannelSettings) })

/** A channel's settings and credentials as staff set them (each connector uses its own). */
export const ChannelConfig = Type.Object(
  {
    address: Type.String({
      minLength: 1,
      maxLength: 110,
      pattern: '^\\+?[0-9A-Za-z_-]+(@rbm\\.goog)?$',
      description: 'the Twilio or SMPP number (E.164), WhatsApp phone-number id, Facebook page id or RBM agent id',
    }),
    accountSid: Type.Optional(Type.String({ pattern: '^AC[0-9a-fA-F]{32}$' })),
    apiVersion: Type.Optional(Type.String({ pattern: '^v[0-9]{1,3}\\.[0-9]{1,2}$' })),
    agentId: Type.Optional(idOf('stf')),
    baseUrl: Type.Optional(Type.String({ pattern: '^https?://', description: 'dev mode only' })),
    host: Type.Optional(
      Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.-]+$', description: 'SMPP: the SMSC' }),
    ),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    tls: Type.Optional(Type.Boolean({ description: 'SMPP over TLS' })),
    systemId: Type.Optional(
      Type.String({ minLength: 1, maxLength: 15, pattern: '^[\\x21-\\x7e]+$', description: 'SMPP system_id' }),
    ),
    systemType: Type.Optional(Type.String({ maxLength: 12, pattern: '^[\\x21-\\x7e]*$' })),
    verifiedSender: Type.Optional(
      Type.String({ minLength: 1, maxLength: 100, description: "RBM: the agent's verified display name" }),
    ),
    humanAgentTag: Type.Optional(
      Type.Boolean({
        description: 'Messenger: the Human Agent permission is granted (HUMAN_AGENT replies, 7 days)',
      }),
    ),
    secrets: Type.Object(
      {
        authToken: Type.Optional(ChannelSecret),
        appSecret: Type.Optional(ChannelSecret),
        accessToken: Type.Optional(ChannelSecret),
        verifyToken: Type.Optional(Type.String({ minLength: 16, maxLength: 256, pattern: '^[\\w-]+$' })),
        clientToken: Type.Optional(Type.String({ minLength: 16, maxLength: 256, pattern: '^[\\w-]+$' })),
        serviceAccountKey: Type.Optional(
          Type.String({
            minLength: 100,
            maxLength: 8192,
            description: "RBM: the agent's service account JSON key, as the Google Cloud console downloads it",
          }),
        ),
        password: Type.Optional(
          Type.String({
            minLength: 1,
            maxLength: 8,
            pattern: '^[\\x21-\\x7e]+$',
            description: 'SMPP password (SMPP 3.4 allows 8 characters at most)',
          }),
        ),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
)
export type ChannelConfig = Static<typeof ChannelConfig>

/** The customer a public conversation belongs to (`POST /v1/conversations/:conversationId/public-channel/customer`). */
export const PublicChannelCustomer = Type.Object({ customerId: idOf('cus') }, { additionalProperties: false })

/** A tenant's own formats to mask on public channels, beside cards, CVVs and IBANs (which are always masked). */
export const DlpPattern = Type.Object(
  {
    label: Type.String({
      minLength: 1,
      maxLength: 60,
      pattern: "^[\\p{L}\\p{N} ._'-]+$",
      description: 'shown in place of the match, e.g. [national id]',
    }),
    pattern: Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'an RE2 regular expression, matched case-insensitively (no backreferences or lookarounds)',
    }),
  },
  { additionalProperties: false },
)
export const DlpPatterns = Type.Array(DlpPattern, { maxItems: 20 })

export const DlpPolicy = Type.Object({ patterns: DlpPatterns }, { additionalProperties: false })
export type DlpPolicy = Static<typeof DlpPolicy>

/** A text to mask before it goes on a public channel (`POST /v1/dlp/scan`), with formats of the caller's own. */
export const DlpScanRequest = Type.Object(
  {
    text: Type.String({ maxLength: 65536 }),
    patterns: Type.Optional(DlpPatterns),
  },
  { additionalProperties: false },
)
export type DlpScanRequest = Static<typeof DlpScanRequest>

/** A text masked, and what was found where. */
export const DlpScanResult = Type.Object({
  masked: Type.String(),
  findings: Type.Array(
    Type.Object({
      kind: Type.String(),
      label: Type.Optional(Type.String()),
      start: Type.Integer(),
      end: Type.Integer(),
    }),
  ),
})
export type DlpScanResult = Static<typeof DlpScanResult>

/**
 * The bank's registered domains (where its links point, and what lookalikes imitate) and its own sender IDs and
 * numbers (what a spoofed SMS claims to come from). Inbound, they decide the smishing and spoofing flags; outbound,
 * every link the bank sends on a public channel must be on one of the domains (or on the server's own public URL).
 */
export const LinkPolicy = Type.Object(
  {
    domains: Type.Array(
      Type.String({
        minLength: 3,
        maxLength: 253,
        pattern: '^[^\\s/:@]+\\.[^\\s/:@]+$',
        description: 'a registrable domain, e.g. example-bank.com (its subdomains count as the bank’s)',
      }),
      { maxItems: 20 },
    ),
    senderIds: Type.Array(
      Type.String({
        minLength: 2,
        maxLength: 20,
        pattern: '^\\+?[0-9A-Za-z ._-]+$',
        description: 'an alphanumeric sender ID (e.g. EXAMPLEBNK) or a number in E.164 the bank sends from',
      }),
      { maxItems: 20 },
    ),
    securePlace: Type.Optional(
      Type.Union([Type.Literal('secure-page'), Type.Literal('app')], {
        description:
          'what the texts call the place a secure link opens: "our secure page" (the default: the web chat) or ' +
          '"our app" (a bank whose links open its app)',
      }),
    ),
  },
  { additionalProperties: false },
)
export type LinkPolicy = Static<typeof LinkPolicy>

/**
 * The bank's WhatsApp message templates, as approved in WhatsApp Manager: what a business may send outside the 24-hour
 * customer service window. A template is used for a message with a link (`pivot`: the secure-channel invitation) or
 * without (`message`); its body's {{1}}, {{2}}, … are filled from the parameters named here, in order, and a pivot
 * template's URL button (registered at Meta as `urlButtonBase` + {{1}}) gets the rest of the pivot link.
 */
export const WhatsAppTemplate = Type.Object(
  {
    purpose: Type.Union([Type.Literal('pivot'), Type.Literal('message')]),
    name: Type.String({ pattern: '^[a-z0-9_]{1,512}$', description: 'the template name approved at Meta' }),
    language: Type.String({ pattern: '^[a-z]{2,3}(_[A-Z]{2})?$', description: 'such as en_GB' }),
    category: Type.Union([Type.Literal('UTILITY'), Type.Literal('MARKETING'), Type.Literal('AUTHENTICATION')]),
    parameters: Type.Array(Type.Union([Type.Literal('text'), Type.Literal('link-domain')]), {
      maxItems: 10,
      description: "what fills {{1}}, {{2}}, …: the message's text, or the domain of the bank's links",
    }),
    urlButtonBase: Type.Optional(
      Type.String({
        pattern: '^https://',
        maxLength: 2000,
        description: "pivot: the URL button's fixed part at Meta; the link's remainder is the button's parameter",
      }),
    ),
  },
  { additionalProperties: false },
)
export type WhatsAppTemplate = Static<typeof WhatsAppTemplate>

export const WhatsAppTemplates = Type.Object(
  { templates: Type.Array(WhatsAppTemplate, { maxItems: 50 }) },
  { additionalProperties: false },
)
export type WhatsAppTemplates = Static<typeof WhatsAppTemplates>
