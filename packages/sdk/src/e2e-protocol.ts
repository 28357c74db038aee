import { type Static, type StringOptions, Type } from '@sinclair/typebox'
import { Base64, ClientMessageId } from './conversation-protocol.ts'
import { oneOf } from './schema-helpers.ts'

/** The MLS delivery service's answers (end-to-end encrypted conversations). Re-exported by `@strongroom/sdk/protocol`. */

/** Who a leaf of a group stands for: a device, a staff member, or the bank's archive member. */
export const MlsMemberKind = oneOf(['device', 'staff', 'archive'] as const)

/** One of a staff member's browsers: the first 16 characters of its signature key, base64url. */
export const MemberInstance = Type.String({
  pattern: '^[A-Za-z0-9_-]{16}$',
  description: 'one of a staff member’s browsers or devices (a leaf of its own); from its member credential',
})

/** Which of the caller's instances a key-package, welcome or re-add route is about (none: the caller's only one). */
export const MemberInstanceQuery = Type.Object(
  { instance: Type.Optional(MemberInstance) },
  { additionalProperties: false },
)
export type MemberInstanceQuery = Static<typeof MemberInstanceQuery>

/** The credential authority's public keys (JWKs), with which every member checks every other member's credential. */
export const CredentialAuthority = Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.Unknown())) })

/** A member credential binding the caller to its MLS signature public key. */
export const MemberCredential = Type.Object({ credential: Type.String() })

/** A member's key packages in the directory. */
export const KeyPackageStock = Type.Object({
  available: Type.Integer({ description: 'unclaimed key packages' }),
  lastResort: Type.Boolean({ description: 'whether a last-resort key package is stored' }),
  low: Type.Boolean({ description: 'true when the member should upload more' }),
})
export type KeyPackageStock = Static<typeof KeyPackageStock>

/** One key package of each member (instance) claimed, to add them to a group. */
export const ClaimedKeyPackages = Type.Object({
  keyPackages: Type.Array(
    Type.Object({
      kind: MlsMemberKind,
      id: Type.String(),
      instance: Type.Optional(MemberInstance),
      ref: Type.String(),
      keyPackage: Base64,
    }),
  ),
})

/** A commit the delivery service accepted: the epoch it started, its place in the log, and whom it added. */
export const CommitAccepted = Type.Object({
  epoch: Type.Integer({ description: 'the group’s epoch after this commit' }),
  seq: Type.Integer({ description: 'the commit’s place in the conversation’s message log' }),
  added: Type.Array(Type.Object({ kind: MlsMemberKind, id: Type.String() })),
})

/** The GroupInfo published for the group's current epoch (for an external commit). */
export const PublishedGroupInfo = Type.Object({ epoch: Type.Integer(), groupInfo: Base64 })

/** The Welcome messages waiting for the caller. */
export const WelcomeList = Type.Object({
  welcomes: Type.Array(
    Type.Object({
      id: Type.String(),
      conversationId: Type.String(),
      epoch: Type.Integer(),
      commitSeq: Type.Integer(),
      welcome: Base64,
    }),
  ),
})

/** The suites a Strongroom group may use: X25519/AES-128-GCM/Ed25519, and P-256 for P-256-only secure hardware. */
export const mlsCipherSuites = [
  'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519',
  'MLS_128_DHKEMP256_AES128GCM_SHA256_P256',
] as const
export type MlsCipherSuite = (typeof mlsCipherSuites)[number]

/** Base64 of an MLS structure of at most `max` characters. */
const B64 = (max: number, options: StringOptions = {}) =>
  Type.String({ ...Base64, minLength: 4, maxLength: max, ...options })

/** The caller's MLS signature public key, for a member credential binding it (`POST /v1/e2e/credentials`). */
export const CredentialRequest = Type.Object(
  { signaturePublicKey: Type.String({ pattern: '^[A-Za-z0-9_-]{40,100}$', description: 'base64url' }) },
  { additionalProperties: false },
)
export type CredentialRequest = Static<typeof CredentialRequest>

/** Key packages for others to add the caller to groups (`POST /v1/e2e/key-packages`). */
export const KeyPackageUpload = Type.Object(
  {
    keyPackages: Type.Array(B64(8192), { maxItems: 100 }),
    lastResort: Type.Optional(B64(8192)),
    replace: Type.Optional(
      Type.Boolean({
        description: 'drop the caller’s unclaimed key packages first (it lost their private halves with its state)',
      }),
    ),
  },
  { additionalProperties: false },
)
export type KeyPackageUpload = Static<typeof KeyPackageUpload>

/** The members to claim one key package each for (`POST /v1/conversations/:conversationId/e2e/key-packages/claim`). */
export const KeyPackageClaim = Type.Object(
  {
    members: Type.Array(
      Type.Object(
        {
          kind: MlsMemberKind,
          id: Type.String({ minLength: 1, maxLength: 64 }),
          instance: Type.Optional(MemberInstance),
        },
        {
          additionalProperties: false,
        },
      ),
      { minItems: 1, maxItems: 50 },
    ),
  },
  { additionalProperties: false },
)
export type KeyPackageClaim = Static<typeof KeyPackageClaim>

/** The caller's new MLS group for the conversation, at epoch 0 (`PUT /v1/conversations/:conversationId/e2e/group`). */
export const NewSecureGroup = Type.Object(
  { groupId: Type.String({ ...Base64, minLength: 16, maxLength: 88 }), cipherSuite: oneOf(mlsCipherSuites) },
  { additionalProperties: false },
)
export type NewSecureGroup = Static<typeof NewSecureGroup>

/** A commit for the group's current epoch, with the welcome for the members it adds (`POST /v1/conversations/:conversationId/e2e/commits`). */
export const CommitSubmission = Type.Object(
  {
    clientMessageId: ClientMessageId,
    commit: B64(512 * 1024),
    welcome: Type.Optional(B64(512 * 1024)),
    groupInfo: Type.Optional(
      B64(256 * 1024, {
        description:
          'the signed GroupInfo (with external_pub and ratchet_tree) of the epoch the commit starts; required',
      }),
    ),
  },
  { additionalProperties: false },
)
export type CommitSubmission = Static<typeof CommitSubmission>

/** Why a secure conversation may not be recorded (`POST …/e2e/archive-removal-exemptions`): compliance only. */
export const ArchiveRemovalRequest = Type.Object(
  { reason: Type.String({ minLength: 10, maxLength: 500, description: 'why it may not be recorded' }) },
  { additionalProperties: false },
)
export type ArchiveRemovalRequest = Static<typeof ArchiveRemovalRequest>

/** The single-use exemption: one commit before `expiresAt` may take the archive out of the conversation. */
export const ArchiveRemovalExemption = Type.Object({
  id: Type.String(),
  conversationId: Type.String(),
  reason: Type.String(),
  expiresAt: Type.String({ format: 'date-time' }),
})
export type ArchiveRemovalExemption = Static<typeof ArchiveRemovalExemption>
