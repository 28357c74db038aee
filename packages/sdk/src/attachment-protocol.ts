import { type Static, Type } from '@sinclair/typebox'

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
