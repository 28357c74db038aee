import { type Static, Type } from '@sinclair/typebox'
import { idOf, oneOf } from './schema-helpers.ts'

/**
 * Messages, conversations and staff presence, as the routes and the stream carry them. Re-exported by
 * `@strongroom/sdk/protocol`.
 */

export const Base64 = Type.String({ pattern: '^[A-Za-z0-9+/]*={0,2}$', description: 'standard base64' })
export const ConversationId = Type.String({ pattern: '^cnv_[A-Za-z0-9_-]{22}$' })
export const ClientMessageId = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$' })
export const ContentType = Type.String({ minLength: 1, maxLength: 100, pattern: '^[a-z0-9][a-z0-9.+/-]*$' })

export const MemberRef = Type.Object({
  kind: Type.Union([Type.Literal('device'), Type.Literal('staff')]),
  id: Type.String(),
})

/**
 * Who wrote a message: a member (device or staff), the bank's archive (which commits a revoked device's removal from
 * MLS groups), the customer on a public channel (`channel`, whose id is the channel identity), or Strongroom itself
 * (`system`: DLP notices, pivot invitations).
 */
export const SenderRef = Type.Object({
  kind: Type.Union([
    Type.Literal('device'),
    Type.Literal('staff'),
    Type.Literal('archive'),
    Type.Literal('channel'),
    Type.Literal('system'),
  ]),
  id: Type.String(),
})

export const Message = Type.Object({
  id: Type.String(),
  conversationId: Type.String(),
  seq: Type.Integer(),
  sender: SenderRef,
  clientMessageId: Type.String(),
  contentType: Type.String(),
  ciphertext: Type.String({ description: 'base64' }),
  createdAt: Type.String(),
  expiresAt: Type.Union([Type.String(), Type.Null()]),
})
export type Message = Static<typeof Message>

/** Open, pending (waiting on the customer) or resolved; a message from the customer reopens it. */
export const ConversationStatus = Type.Union([Type.Literal('open'), Type.Literal('pending'), Type.Literal('resolved')])
export type ConversationStatus = Static<typeof ConversationStatus>

export const Conversation = Type.Object({
  id: Type.String(),
  /** Null for a public-channel conversation whose sender is not yet linked to a customer. */
  customerId: Type.Union([Type.String(), Type.Null()]),
  assignedStaffId: Type.Union([Type.String(), Type.Null()]),
  lastSeq: Type.Integer(),
  /** When the last message arrived; null before the first. */
  lastMessageAt: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  status: ConversationStatus,
  members: Type.Array(
    Type.Object({
      kind: Type.Union([Type.Literal('device'), Type.Literal('staff')]),
      id: Type.String(),
      deliveredSeq: Type.Integer(),
      readSeq: Type.Integer(),
    }),
  ),
})
export type Conversation = Static<typeof Conversation>

/** A staff member's presence: available (a console connected), away (connected, and said so) or offline. */
export const Presence = Type.Union([Type.Literal('available'), Type.Literal('away'), Type.Literal('offline')])
export type Presence = Static<typeof Presence>
export const StaffPresence = Type.Object({ staffId: Type.String(), presence: Presence })
export type StaffPresence = Static<typeof StaffPresence>

export const ConversationList = Type.Object({ conversations: Type.Array(Conversation) })
export const MessageList = Type.Object({ messages: Type.Array(Message) })

/**
 * A page of the caller's conversations (`GET /v1/conversations`): newest first, `before` the last of the previous page;
 * `scope: 'all'` every conversation of the bank, for staff holding conversations:all.
 */
export const ConversationListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
    before: Type.Optional(idOf('cnv')),
    scope: Type.Optional(Type.Union([Type.Literal('member'), Type.Literal('all')])),
    status: Type.Optional(ConversationStatus),
  },
  { additionalProperties: false },
)
export type ConversationListQuery = Static<typeof ConversationListQuery>

/** Which of a conversation's messages to read (`GET /v1/conversations/:conversationId/messages`), in order. */
export const MessageListQuery = Type.Object(
  {
    after: Type.Optional(Type.Integer({ minimum: 0 })),
    until: Type.Optional(Type.Integer({ minimum: 0 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  },
  { additionalProperties: false },
)
export type MessageListQuery = Static<typeof MessageListQuery>
export const StaffPresenceList = Type.Object({ staff: Type.Array(StaffPresence) })

/** A conversation's MLS group: its id, cipher suite and current epoch. */
export const SecureGroup = Type.Object({
  groupId: Base64,
  cipherSuite: Type.String(),
  epoch: Type.Integer({ description: 'the epoch the next commit must be made in' }),
})
export type SecureGroup = Static<typeof SecureGroup>

/** A staff member saying they are away, or back (`PUT /v1/staff/me/presence`). */
export const PresenceChange = Type.Object({ away: Type.Boolean() }, { additionalProperties: false })
export type PresenceChange = Static<typeof PresenceChange>

/** Opening a conversation with a customer (`POST /v1/conversations`). */
export const NewConversation = Type.Object(
  {
    customerId: idOf('cus'),
    assignedStaffId: Type.Optional(idOf('stf')),
    deviceIds: Type.Optional(Type.Array(idOf('dev'), { maxItems: 100, uniqueItems: true })),
    encryptionRequired: Type.Optional(
      Type.Boolean({
        description:
          'Marks the conversation secure: only MLS messages of its group are accepted, none before the group exists',
      }),
    ),
  },
  { additionalProperties: false },
)
export type NewConversation = Static<typeof NewConversation>

/** Adding a staff member, or a device of the conversation's customer (`POST /v1/conversations/:conversationId/members`). */
export const NewMember = Type.Object(
  { kind: Type.Union([Type.Literal('device'), Type.Literal('staff')]), id: Type.String({ maxLength: 64 }) },
  { additionalProperties: false },
)
export type NewMember = Static<typeof NewMember>

/** `reassign` keeps the previous assignee a member; `transfer` takes them out of the conversation. */
export const assignmentModes = ['reassign', 'transfer'] as const

/** Giving a conversation to another agent (`PUT /v1/conversations/:conversationId/assignment`). */
export const Assignment = Type.Object(
  { staffId: idOf('stf'), mode: oneOf(assignmentModes) },
  { additionalProperties: false },
)
export type Assignment = Static<typeof Assignment>

/** A conversation's new status (`PUT /v1/conversations/:conversationId/status`). */
export const StatusChange = Type.Object({ status: ConversationStatus }, { additionalProperties: false })
export type StatusChange = Static<typeof StatusChange>

/** A message appended over HTTP (`POST /v1/conversations/:conversationId/messages`); the same clientMessageId is sent once. */
export const OutgoingMessageBody = Type.Object(
  {
    clientMessageId: ClientMessageId,
    contentType: ContentType,
    ciphertext: Base64,
    expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
)
export type OutgoingMessageBody = Static<typeof OutgoingMessageBody>

/** Moving the caller's delivered and read markers forward (`POST /v1/conversations/:conversationId/markers`). */
export const MarkerUpdate = Type.Object(
  {
    deliveredSeq: Type.Optional(Type.Integer({ minimum: 0 })),
    readSeq: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false, minProperties: 1 },
)
export type MarkerUpdate = Static<typeof MarkerUpdate>

/** How long devices keep messages without an expiry of their own: the tenant's, or one conversation's override. */
export const DeviceRetention = Type.Object(
  {
    deviceMessageDays: Type.Union([Type.Integer({ minimum: 1, maximum: 3650 }), Type.Null()], {
      description: 'days a message without its own expiry is kept for devices; null: no limit (or the tenant default)',
    }),
  },
  { additionalProperties: false },
)
export type DeviceRetention = Static<typeof DeviceRetention>
