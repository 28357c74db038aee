import { type Static, Type } from '@sinclair/typebox'

/** An internal note on a conversation: staff only, never a message, never sent to the customer. */
export const ConversationNote = Type.Object({
  id: Type.String(),
  conversationId: Type.String(),
  authorStaffId: Type.String(),
  text: Type.String(),
  createdAt: Type.String(),
})
export type ConversationNote = Static<typeof ConversationNote>

/** A reply the bank wrote once, which agents insert by typing "/" and its shortcut in the composer. */
export const CannedReply = Type.Object({
  id: Type.String(),
  shortcut: Type.String(),
  title: Type.String(),
  text: Type.String(),
  updatedAt: Type.String(),
})
export type CannedReply = Static<typeof CannedReply>

export const CannedReplyInput = Type.Object(
  {
    shortcut: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,31}$', description: 'lower-case letters, digits, -' }),
    title: Type.String({ minLength: 1, maxLength: 80 }),
    text: Type.String({ minLength: 1, maxLength: 2000 }),
  },
  { additionalProperties: false },
)
export type CannedReplyInput = Static<typeof CannedReplyInput>

/** A customer (or an unidentified sender's conversation) a console search found. */
export const SearchHit = Type.Object({
  customerId: Type.Union([Type.String(), Type.Null()]),
  /** Every conversation of theirs the caller may see, most recent first. */
  conversationIds: Type.Array(Type.String()),
  matched: Type.Array(Type.Union([Type.Literal('name'), Type.Literal('phone'), Type.Literal('text')])),
  /** The public messages whose text matched, newest first (at most five). */
  messages: Type.Array(Type.Object({ conversationId: Type.String(), seq: Type.Integer() })),
  lastMessageAt: Type.String(),
})
export type SearchHit = Static<typeof SearchHit>

export const SearchPage = Type.Object({
  hits: Type.Array(SearchHit),
  /** The offset of the next page; null on the last. */
  next: Type.Union([Type.Integer(), Type.Null()]),
})
export type SearchPage = Static<typeof SearchPage>
