import type { ArchiveSearchPage, Conversation, ConversationStatus, StaffClient } from '@strongroom/sdk'
import type { CannedReply, ConversationNote, SearchPage } from '@strongroom/sdk/protocol'

export type { CannedReply, ConversationNote, SearchPage }

/** The agent's desk in the console: the staff client's desk calls, with the canned replies asked once a session. */
export class Desk {
  readonly #client: StaffClient
  #replies: Promise<CannedReply[]> | undefined

  constructor(client: StaffClient) {
    this.#client = client
  }

  setStatus(conversationId: string, status: ConversationStatus): Promise<Conversation> {
    return this.#client.setConversationStatus(conversationId, status)
  }

  notes(conversationId: string): Promise<ConversationNote[]> {
    return this.#client.listNotes(conversationId)
  }

  addNote(conversationId: string, text: string): Promise<ConversationNote> {
    return this.#client.addNote(conversationId, text)
  }

  /** The bank's canned replies, asked once a session. */
  cannedReplies(): Promise<CannedReply[]> {
    this.#replies ??= this.#client.listCannedReplies().catch(() => [])
    return this.#replies
  }

  search(q: string, offset = 0): Promise<SearchPage> {
    return this.#client.searchConversations(q, { offset })
  }

  customerConversations(customerId: string): Promise<Conversation[]> {
    return this.#client.customerConversations(customerId)
  }

  /**
   * Secure (end-to-end encrypted) messages holding `text`, through the compliance archive's text search
   * (`archive:read`), which the server audits as every archive search. A page scans a bounded stretch of the archive:
   * follow `next` for more.
   */
  archiveSearch(text: string, after?: number): Promise<ArchiveSearchPage> {
    return this.#client.searchArchive({ text, recordClass: 'secure-message', limit: 20, after })
  }
}

/** The canned replies an agent's "/…" asks for: those whose shortcut starts with what follows the slash. */
export function matchingReplies(replies: readonly CannedReply[], draft: string): CannedReply[] {
  const match = /^\/([a-z0-9-]*)$/.exec(draft.trim())
  if (!match) return []
  return replies.filter((r) => r.shortcut.startsWith(match[1] as string)).slice(0, 8)
}
