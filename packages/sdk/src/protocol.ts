import { FormatRegistry, type Static, Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'

/**
 * The wire formats the server and the SDK share: the server validates with these schemas and the SDK is typed from
 * them, so the two cannot drift apart.
 *
 * The realtime protocol on /v1/stream: JSON text frames, one object each, with a `type`. The first frame a client
 * sends is `auth`; the server answers `ready` and then delivers every message of the member's conversations in
 * sequence order, starting after the cursors the client gives (or the delivered markers the server kept).
 */

if (!FormatRegistry.Has('date-time')) {
  FormatRegistry.Set('date-time', (value) => /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(value))
}

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

export const AuthFrame = Type.Object(
  {
    type: Type.Literal('auth'),
    authorization: Type.String({ minLength: 1, maxLength: 200, description: '"DPoP <token>" or "Bearer <token>"' }),
    dpop: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    integrity: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'integrity token' })),
    assertion: Type.Optional(
      Type.String({ minLength: 1, maxLength: 4096, description: 'App Attest assertion over the dpop proof' }),
    ),
    cursors: Type.Optional(
      Type.Record(Type.String({ pattern: '^cnv_[A-Za-z0-9_-]{22}$' }), Type.Integer({ minimum: 0 }), {
        maxProperties: 10000,
      }),
    ),
  },
  { additionalProperties: false },
)

export const SendFrame = Type.Object(
  {
    type: Type.Literal('send'),
    ref: Type.String({ minLength: 1, maxLength: 128 }),
    conversationId: ConversationId,
    clientMessageId: ClientMessageId,
    contentType: ContentType,
    ciphertext: Base64,
    expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
)

export const AckFrame = Type.Object(
  { type: Type.Literal('ack'), conversationId: ConversationId, seq: Type.Integer({ minimum: 1 }) },
  { additionalProperties: false },
)

export const PingFrame = Type.Object({ type: Type.Literal('ping') }, { additionalProperties: false })

export const ClientFrame = Type.Union([SendFrame, AckFrame, PingFrame])
export type AuthFrame = Static<typeof AuthFrame>
export type SendFrame = Static<typeof SendFrame>
export type ClientFrame = Static<typeof ClientFrame>

export const authFrameCheck = TypeCompiler.Compile(AuthFrame)
export const clientFrameCheck = TypeCompiler.Compile(ClientFrame)

export interface ProblemDocument {
  type: string
  title: string
  status: number
  detail?: string
  instance?: string
  errors?: { path: string; message: string }[]
  /** On an MLS epoch conflict: the group's current epoch, to re-base on. */
  currentEpoch?: number
  /** To a revoked device (`identity/device-wiped`): the server's signed order to erase its local store. */
  wipeCommand?: string
}

/**
 * Told on the stream to every device of a customer when their factors change (a TOTP app or passkey added or
 * removed, or all reset by the bank's staff), so that a change the customer did not make is seen at once.
 */
export interface SecurityNotice {
  kind: 'factor-added' | 'factor-removed' | 'factors-reset'
  /** The factor changed; null for a reset of all of them. */
  factor: 'totp' | 'passkey' | null
  /** Who made the change: one of the customer's devices (which) or the bank's staff. */
  by: { kind: 'device'; deviceId: string } | { kind: 'staff' }
  at: string
}

/**
 * Something about a conversation changed that is not a message: a payment request asked, decided or expired, a pivot
 * link sent, opened, used or replaced, the conversation given to another agent, earlier messages masked. A wake-up, not the record: the client
 * reads the current state over the API (a stream that reconnects reads it again, since updates are not replayed).
 */
export type ConversationUpdate =
  | { kind: 'consent'; consentId: string; status: 'pending' | 'approved' | 'declined' | 'expired'; fraud?: boolean }
  | { kind: 'pivot'; linkId: string; status: 'sent' | 'opened' | 'completed' | 'expired' | 'revoked' }
  | { kind: 'assignment'; assignedStaffId: string | null }
  /**
   * Public-channel messages of the conversation masked after the fact (a later message completed a card number they
   * began): a client showing them reads them again.
   */
  | { kind: 'redaction'; seqs: number[] }

/** What the server sends on the stream. */
export type ServerFrame =
  | {
      type: 'ready'
      sessionId: string
      heartbeatMs: number
      conversations: { conversationId: string; lastSeq: number }[]
    }
  | { type: 'message'; message: Message }
  | {
      type: 'sent'
      ref: string
      created: boolean
      message: { id: string; conversationId: string; seq: number; createdAt: string; expiresAt: string | null }
    }
  | { type: 'joined'; conversationId: string }
  | { type: 'left'; conversationId: string }
  | { type: 'error'; ref?: string; problem: ProblemDocument }
  | { type: 'heartbeat' }
  | { type: 'pong' }
  | { type: 'closing'; reason: string; cursors: Record<string, number> }
  | { type: 'notice'; notice: SecurityNotice }
  /** `conversationId` is null for a payment request asked outside any conversation (told to the customer's devices). */
  | { type: 'update'; conversationId: string | null; update: ConversationUpdate }

export * from './attachment-protocol.ts'
export * from './channel-protocol.ts'
export { CloseCode } from './close-codes.ts'
export * from './desk-protocol.ts'
export * from './problems.ts'
