import type { Conversation, ConversationStatus, StrongroomClient } from '@strongroom/sdk'
import type { CannedReply, ConversationNote, SearchPage } from '@strongroom/sdk/protocol'

export type { CannedReply, ConversationNote, SearchPage }

const at = (conversationId: string) => `/v1/conversations/${encodeURIComponent(conversationId)}`

/** The agent's desk on the server: status, notes, canned replies, search, a customer's conversations. */
export class Desk {
  readonly #client: StrongroomClient
  #replies: Promise<CannedReply[]> | undefined

  constructor(client: StrongroomClient) {
    this.#client = client
  }

  setStatus(conversationId: string, status: ConversationStatus): Promise<Conversation> {
    return this.#client.request<Conversation>('PUT', `${at(conversationId)}/status`, { status })
  }

  async notes(conversationId: string): Promise<ConversationNote[]> {
    return (await this.#client.request<{ notes: ConversationNote[] }>('GET', `${at(conversationId)}/notes`)).notes
  }

  addNote(conversationId: string, text: string): Promise<ConversationNote> {
    return this.#client.request<ConversationNote>('POST', `${at(conversationId)}/notes`, { text })
  }

  /** The bank's canned replies, asked once a session. */
  cannedReplies(): Promise<CannedReply[]> {
    this.#replies ??= this.#client
      .request<{ replies: CannedReply[] }>('GET', '/v1/canned-replies')
      .then((r) => r.replies)
      .catch(() => [])
    return this.#replies
  }

  search(q: string, offset = 0): Promise<SearchPage> {
    const query = new URLSearchParams({ q, limit: '20', offset: String(offset) })
    return this.#client.request<SearchPage>('GET', `/v1/search/conversations?${query}`)
  }

  async customerConversations(customerId: string): Promise<Conversation[]> {
    const path = `/v1/customers/${encodeURIComponent(customerId)}/conversations`
    return (await this.#client.request<{ conversations: Conversation[] }>('GET', path)).conversations
  }
}

/** The canned replies an agent's "/…" asks for: those whose shortcut starts with what follows the slash. */
export function matchingReplies(replies: readonly CannedReply[], draft: string): CannedReply[] {
  const match = /^\/([a-z0-9-]*)$/.exec(draft.trim())
  if (!match) return []
  return replies.filter((r) => r.shortcut.startsWith(match[1] as string)).slice(0, 8)
}
