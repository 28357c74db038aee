import { type Static, Type } from '@sinclair/typebox'
import { ArchiveRecord, ArchiveRetention, LegalHold } from './archive-protocol.ts'
import { AuditEvent } from './audit-protocol.ts'
import { Passkey } from './auth-protocol.ts'
import { ConsentRequest } from './consent-protocol.ts'
import { Device } from './identity-protocol.ts'

/**
 * The data subject export (`POST /v1/customers/:customerId/export`): everything held about a customer, as one JSON
 * document. Re-exported by `@strongroom/sdk/protocol`.
 */

export const DATA_SUBJECT_EXPORT_TYPE = 'strongroom-data-subject-export/v1'

const nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()])

const MessageContent = Type.Union([
  Type.Object({
    readable: Type.Literal(true),
    source: Type.Literal('public-channel'),
    direction: Type.String(),
    channel: Type.String(),
    text: Type.String({ description: 'as stored: card numbers and other sensitive data already masked' }),
    masked: Type.Array(Type.String()),
    imported: Type.Boolean({ description: 'public history imported into a secure conversation' }),
  }),
  Type.Object({
    readable: Type.Literal(false),
    reason: Type.String({ description: 'why the server cannot read it (end-to-end encrypted ciphertext)' }),
    ciphertextBytes: Type.Integer(),
  }),
])

const ExportedMessage = Type.Object({
  seq: Type.Integer(),
  id: Type.String(),
  sender: Type.Object({ kind: Type.String(), id: Type.String() }),
  contentType: Type.String(),
  createdAt: Type.String(),
  expiresAt: nullable(Type.String()),
  content: MessageContent,
})

const ExportedConversation = Type.Object({
  id: Type.String(),
  createdAt: Type.String(),
  assignedStaffId: nullable(Type.String()),
  members: Type.Array(Type.Object({ kind: Type.String(), id: Type.String() })),
  deviceMessageDays: nullable(Type.Integer({ description: "this conversation's own retention for devices" })),
  messages: Type.Array(ExportedMessage),
})

/**
 * Everything Strongroom holds about one customer, as a data subject access request (GDPR Art. 15, 20) answers it: in
 * JSON, one document. Secrets (token and code hashes, TOTP secrets, private keys) are never part of it; end-to-end
 * encrypted messages appear as what the server holds, ciphertext it cannot read, and in clear where the bank's
 * archive read them as a member of the conversation.
 */
export const DataSubjectExport = Type.Object({
  type: Type.Literal(DATA_SUBJECT_EXPORT_TYPE),
  tenantId: Type.String(),
  exportedAt: Type.String(),
  exportedBy: Type.String(),
  customer: Type.Object({
    id: Type.String(),
    externalRef: Type.String(),
    displayName: Type.String(),
    phoneNumber: nullable(Type.String()),
    createdAt: Type.String(),
  }),
  devices: Type.Array(Device, {
    description: 'every device in every state: pending, active, suspended, revoked',
  }),
  passkeys: Type.Array(Passkey, {
    description: 'public data only; the private keys never leave the authenticator',
  }),
  factors: Type.Object({
    totp: Type.Array(
      Type.Object({
        id: Type.String(),
        status: Type.String(),
        failedAttempts: Type.Integer(),
        lockedUntil: nullable(Type.String()),
        createdAt: Type.String(),
      }),
      { description: 'authenticator apps, without their secrets' },
    ),
    smsCodes: Type.Array(
      Type.Object({
        id: Type.String(),
        failedAttempts: Type.Integer(),
        createdAt: Type.String(),
        expiresAt: Type.String(),
        usedAt: nullable(Type.String()),
      }),
      { description: 'one-time codes sent by SMS, without the codes' },
    ),
  }),
  channelIdentities: Type.Array(
    Type.Object({
      id: Type.String(),
      connector: Type.String(),
      address: Type.String({ description: 'the phone number or channel id the customer wrote from' }),
      conversationId: Type.String(),
      secureConversationId: nullable(Type.String()),
      lastInboundAt: nullable(Type.String()),
      createdAt: Type.String(),
    }),
  ),
  conversations: Type.Array(ExportedConversation),
  consents: Type.Array(ConsentRequest, {
    description: 'payment confirmations asked of the customer, with signed receipts',
  }),
  archive: Type.Object({
    records: Type.Array(ArchiveRecord, {
      description: "the compliance archive's records about the customer, decrypted where still readable",
    }),
  }),
  auditEvents: Type.Array(AuditEvent, { description: 'security events about the customer and their devices' }),
  retention: Type.Object({
    deviceMessageDays: nullable(Type.Integer({ description: "the bank's default retention of messages for devices" })),
    archiveDays: ArchiveRetention,
    legalHolds: Type.Array(LegalHold),
    erasure: Type.Object({
      possibleNow: Type.Boolean(),
      heldBy: nullable(Type.String({ description: 'the legal hold that stops erasure' })),
      retainedUntil: nullable(Type.String({ description: 'erasure is possible from then, unless a hold stands' })),
    }),
  }),
  notes: Type.Array(Type.String()),
})

export type DataSubjectExport = Static<typeof DataSubjectExport>
