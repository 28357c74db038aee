import { type Static, type TInteger, Type } from '@sinclair/typebox'
import { idOf, oneOf } from './schema-helpers.ts'

/**
 * The record classes that hold content and so expire, each after its own period (the tenant's retention policy);
 * deletion and erasure records stay for as long as the chain.
 */
export const retainedRecordClasses = [
  'secure-message',
  'public-message',
  'membership-change',
  'consent',
  'pivot',
  'device-event',
] as const
export type RetainedRecordClass = (typeof retainedRecordClasses)[number]

/** How many candidate records one archive search decrypts at most: the largest `limit`, and a text search's page. */
export const ARCHIVE_SEARCH_SCAN_LIMIT = 500

/** A compliance archive record, decrypted for the caller where it can still be read. */
export const ArchiveRecord = Type.Object({
  seq: Type.Union([Type.Integer(), Type.Null()], {
    description: 'Position in the tenant’s archive chain (null for the moment before it is linked)',
  }),
  recordClass: Type.String(),
  conversationId: Type.Union([Type.String(), Type.Null()]),
  conversationSeq: Type.Union([Type.Integer(), Type.Null()]),
  customerId: Type.Union([Type.String(), Type.Null()]),
  occurredAt: Type.String({ format: 'date-time' }),
  status: oneOf(['available', 'deleted', 'erased', 'redacted', 'none'] as const),
  content: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  hash: Type.Union([Type.String(), Type.Null()], {
    description: 'hex SHA-256 linking this record to the one before (null until linked)',
  }),
})
export type ArchiveRecord = Static<typeof ArchiveRecord>

/** A page of an archive search: follow `next` (as `after`) for more; `scanned` says how many records were read. */
export const ArchiveSearchPage = Type.Object({
  records: Type.Array(ArchiveRecord),
  next: Type.Union([Type.Integer(), Type.Null()]),
  scanned: Type.Integer(),
})
export type ArchiveSearchPage = Static<typeof ArchiveSearchPage>

/** The archive chain's verification: how far it holds, and the first record that does not. */
export const ArchiveVerification = Type.Object({
  ok: Type.Boolean(),
  records: Type.Integer({ description: 'records that verified, from the first' }),
  checkpoints: Type.Integer(),
  pending: Type.Integer({ description: 'records written but not linked yet (within a second or so)' }),
  deleted: Type.Integer({ description: 'records whose content retention deleted, as the chain records' }),
  failure: Type.Optional(
    Type.Object({ seq: Type.Integer(), id: Type.Union([Type.Integer(), Type.Null()]), reason: Type.String() }),
  ),
  verifiedAt: Type.String({ format: 'date-time' }),
})
export type ArchiveVerification = Static<typeof ArchiveVerification>

/** What an archive search asks for (`GET /v1/archive/records`): `after` is the `next` of the previous page. */
export const ArchiveSearchQuery = Type.Object(
  {
    customerId: Type.Optional(idOf('cus')),
    conversationId: Type.Optional(idOf('cnv')),
    recordClass: Type.Optional(oneOf(retainedRecordClasses)),
    from: Type.Optional(Type.String({ format: 'date-time' })),
    to: Type.Optional(Type.String({ format: 'date-time' })),
    text: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    after: Type.Optional(Type.Integer({ minimum: 0 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: ARCHIVE_SEARCH_SCAN_LIMIT })),
  },
  { additionalProperties: false },
)
export type ArchiveSearchQuery = Static<typeof ArchiveSearchQuery>

/** An archive search as `searchArchive` takes it: its query, with the time range as dates (sent as ISO 8601). */
export type ArchiveSearch = Omit<ArchiveSearchQuery, 'from' | 'to'> & { from?: Date; to?: Date }

/** A case to export (`POST /v1/archive/exports`): a conversation or a customer, optionally within a time range. */
export const ArchiveCase = Type.Object(
  {
    conversationId: Type.Optional(idOf('cnv')),
    customerId: Type.Optional(idOf('cus')),
    from: Type.Optional(Type.String({ format: 'date-time' })),
    to: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
)
export type ArchiveCase = Static<typeof ArchiveCase>

/** A case as `exportArchiveCase` takes it, the time range as dates (sent as ISO 8601). */
export type CaseScope = Omit<ArchiveCase, 'from' | 'to'> & { from?: Date; to?: Date }

/** A case's signed bundle: JSON lines, the last the signed manifest, streamed as it is built. */
export const ArchiveBundle = Type.String()

/** A tenant's archive retention: days per record class. */
export const ArchiveRetention = Type.Object(
  Object.fromEntries(retainedRecordClasses.map((c) => [c, Type.Integer({ minimum: 1, maximum: 36500 })])) as Record<
    RetainedRecordClass,
    TInteger
  >,
  { additionalProperties: false, description: 'Retention in days per record class' },
)
export type ArchiveRetention = Static<typeof ArchiveRetention>

/** A change of the retention: the classes it names. */
export const ArchiveRetentionChange = Type.Partial(ArchiveRetention)

const HoldScopeKind = oneOf(['customer', 'conversation'] as const)

/** A legal hold on a customer or a conversation: their records stop expiring until it is released. */
export const LegalHold = Type.Object({
  id: Type.String(),
  scopeKind: HoldScopeKind,
  scopeId: Type.String(),
  reason: Type.String(),
  placedBy: Type.String(),
  placedAt: Type.String(),
  releasedBy: Type.Union([Type.String(), Type.Null()]),
  releasedAt: Type.Union([Type.String(), Type.Null()]),
})
export type LegalHold = Static<typeof LegalHold>
export const LegalHoldList = Type.Object({ holds: Type.Array(LegalHold) })

/** A legal hold to place (`POST /v1/archive/holds`). */
export const NewLegalHold = Type.Object(
  {
    scopeKind: HoldScopeKind,
    scopeId: Type.String({ minLength: 1, maxLength: 64 }),
    reason: Type.String({ minLength: 1, maxLength: 500 }),
  },
  { additionalProperties: false },
)
export type NewLegalHold = Static<typeof NewLegalHold>

/** A customer erased from the archive: the key destroyed with their records' content (null if none), and how many. */
export const ArchiveErasure = Type.Object({ keyId: Type.Union([Type.String(), Type.Null()]), records: Type.Integer() })

/**
 * A page of a secure conversation's history, each message sealed (HPKE) to the key the caller sent: `enc` is the
 * encapsulated key and `ciphertext` the sealed JSON `{ sender, text, sentAt }` (both base64).
 */
export const SealedHistoryPage = Type.Object({
  messages: Type.Array(Type.Object({ seq: Type.Integer(), enc: Type.String(), ciphertext: Type.String() })),
  next: Type.Union([Type.Integer(), Type.Null()]),
})
export type SealedHistoryMessage = Static<typeof SealedHistoryPage>['messages'][number]

/** The most sealed messages one secure-history page holds. */
export const SECURE_HISTORY_PAGE = 200

/** A page of earlier secure messages, sealed to the key the caller's device made for it (`POST /v1/conversations/:conversationId/secure-history`). */
export const SecureHistoryRequest = Type.Object(
  {
    recipientKey: Type.String({
      pattern: '^[A-Za-z0-9+/]{43}=$',
      description: 'the device’s X25519 public key for this request (32 bytes, base64)',
    }),
    after: Type.Optional(Type.Integer({ minimum: 0, description: 'the conversation seq to start after' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: SECURE_HISTORY_PAGE })),
  },
  { additionalProperties: false },
)
export type SecureHistoryRequest = Static<typeof SecureHistoryRequest>
