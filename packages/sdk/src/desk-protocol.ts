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
  /** Null for a customer found by name or number who has no conversation the caller sees (to be written to first). */
  lastMessageAt: Type.Union([Type.String(), Type.Null()]),
})
export type SearchHit = Static<typeof SearchHit>

export const SearchPage = Type.Object({
  hits: Type.Array(SearchHit),
  /** The offset of the next page; null on the last. */
  next: Type.Union([Type.Integer(), Type.Null()]),
})
export type SearchPage = Static<typeof SearchPage>

/** A search of the conversations by their customer's name or number and their public texts' words, a page at a time. */
export const ConversationSearchQuery = Type.Object(
  {
    q: Type.String({ minLength: 1, maxLength: 200 }),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000 })),
  },
  { additionalProperties: false },
)
export type ConversationSearchQuery = Static<typeof ConversationSearchQuery>

export const NoteList = Type.Object({ notes: Type.Array(ConversationNote) })
export const CannedReplyList = Type.Object({ replies: Type.Array(CannedReply) })

/** An internal note on a conversation (`POST /v1/conversations/:conversationId/notes`). */
export const NewNote = Type.Object(
  { text: Type.String({ minLength: 1, maxLength: 4000 }) },
  { additionalProperties: false },
)
export type NewNote = Static<typeof NewNote>
