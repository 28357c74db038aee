import { type Static, Type } from '@sinclair/typebox'
import { Base64 } from './conversation-protocol.ts'

/** An encrypted attachment as the server stored it: the ciphertext's size and SHA-256 (base64url), never its key. */
export const StoredAttachment = Type.Object({
  id: Type.String(),
  conversationId: Type.String(),
  size: Type.Integer(),
  sha256: Type.String(),
  createdAt: Type.String(),
  expiresAt: Type.Union([Type.String(), Type.Null()]),
})
export type StoredAttachment = Static<typeof StoredAttachment>

/** An attachment's ciphertext, to check against its reference and decrypt. */
export const AttachmentCiphertext = Type.Object({ ciphertext: Base64 })

/** An encrypted attachment to store (`POST /v1/conversations/:conversationId/attachments`); its key goes to the members in an MLS message. */
export const AttachmentUpload = Type.Object(
  {
    ciphertext: Base64,
    expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
)
export type AttachmentUpload = Static<typeof AttachmentUpload>
