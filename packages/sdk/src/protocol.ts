import { FormatRegistry, type Static, Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import {
  Base64,
  ClientMessageId,
  ContentType,
  ConversationId,
  type ConversationStatus,
  type Message,
} from './conversation-protocol.ts'

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

/**
 * The largest sequence number a frame may name: what JavaScript counts exactly, and so PostgreSQL's bigint stores (HTTP
 * bodies are held to the same bound). The server records a node's acks in one statement, which a larger one would fail.
 */
const MAX_SEQ = Number.MAX_SAFE_INTEGER

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
      Type.Record(Type.String({ pattern: '^cnv_[A-Za-z0-9_-]{22}$' }), Type.Integer({ minimum: 0, maximum: MAX_SEQ }), {
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
  { type: Type.Literal('ack'), conversationId: ConversationId, seq: Type.Integer({ minimum: 1, maximum: MAX_SEQ }) },
  { additionalProperties: false },
)

/**
 * An ephemeral MLS application message (a typing or read indicator): relayed at once to the conversation's other
 * members connected now, under the same rule as a send, and never stored, archived or sent again. At most
 * MAX_SIGNAL_BYTES of ciphertext; the server answers `signalled` or an error with the same `ref`.
 */
export const SignalFrame = Type.Object(
  {
    type: Type.Literal('signal'),
    ref: Type.String({ minLength: 1, maxLength: 128 }),
    conversationId: ConversationId,
    ciphertext: Type.String({ pattern: Base64.pattern, maxLength: 8192, description: 'standard base64' }),
  },
  { additionalProperties: false },
)

/** The most ciphertext a signal frame may carry: an indicator padded to 256 bytes, with MLS framing and signature. */
export const MAX_SIGNAL_BYTES = 1024

export const PingFrame = Type.Object({ type: Type.Literal('ping') }, { additionalProperties: false })

export const ClientFrame = Type.Union([SendFrame, SignalFrame, AckFrame, PingFrame])
export type AuthFrame = Static<typeof AuthFrame>
export type SendFrame = Static<typeof SendFrame>
export type SignalFrame = Static<typeof SignalFrame>
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
 * link sent, opened, used or replaced, the conversation given to another agent or marked open, pending or resolved,
 * earlier messages masked. A wake-up, not the record: the client
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
  /** Marked open, pending or resolved by staff; a customer's message that reopens it says so by arriving. */
  | { kind: 'status'; status: ConversationStatus }
  /**
   * A member's stored delivered and read markers moved (`POST …/markers` from any of its clients, or its stream's
   * acknowledgements): where they stand now. Told to every stream of the conversation but the one that acknowledged.
   */
  | { kind: 'markers'; member: { kind: 'device' | 'staff'; id: string }; deliveredSeq: number; readSeq: number }

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
  /** A signal frame relayed (to the members connected now, if any), or `error` with the same ref. */
  | { type: 'signalled'; ref: string }
  /** Another member's signal (a typing or read indicator): MLS ciphertext, read with `SecureMessaging.readSignal`. */
  | { type: 'signal'; conversationId: string; sender: { kind: 'device' | 'staff'; id: string }; ciphertext: string }
  /** A colleague's presence changed (staff who assign conversations only): read it again (`GET /v1/staff/presence`). */
  | { type: 'presence'; staffId: string }
  /**
   * A colleague was added, or their role, name or activation changed (staff who assign conversations only): read the
   * staff list again (`GET /v1/staff`).
   */
  | { type: 'staff'; staffId: string }
  /** `conversationId` is null for a payment request asked outside any conversation (told to the customer's devices). */
  | { type: 'update'; conversationId: string | null; update: ConversationUpdate }

export * from './archive-protocol.ts'
export * from './attachment-protocol.ts'
export * from './audit-protocol.ts'
export * from './auth-protocol.ts'
export * from './channel-protocol.ts'
export { CloseCode } from './close-codes.ts'
export * from './consent-protocol.ts'
export * from './content-types.ts'
export * from './conversation-protocol.ts'
export * from './data-subject-protocol.ts'
export * from './desk-protocol.ts'
export * from './e2e-protocol.ts'
export * from './identity-protocol.ts'
export * from './integrity-protocol.ts'
export * from './limits-protocol.ts'
export * from './problems.ts'
export { idOf, oneOf } from './schema-helpers.ts'
export * from './tenancy-protocol.ts'
export {
  type WireAnswer,
  type WireBody,
  type WireEntry,
  type WireResponse,
  type WireRoute,
  wireContract,
} from './wire-contract.ts'
