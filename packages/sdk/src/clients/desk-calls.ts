import type { CannedReply, ConversationNote, ConversationSearchQuery, SearchPage } from '../desk-protocol.ts'
import type { Conversation, ConversationStatus } from '../protocol.ts'
import type { ClientClass } from './client-core.ts'

/** The agent's desk: a conversation's status and internal notes, canned replies, search, a customer's conversations. */
export function withDeskCalls<Base extends ClientClass>(base: Base) {
  return class DeskCalls extends base {
    /** Open, pending (waiting on the customer) or resolved; audited. A message from the customer reopens it. */
    setConversationStatus(conversationId: string, status: ConversationStatus): Promise<Conversation> {
      return this.call('PUT /v1/conversations/:conversationId/status', { params: { conversationId }, body: { status } })
    }

    /** A conversation's internal notes (staff members in it only; never sent to the customer). */
    async listNotes(conversationId: string): Promise<ConversationNote[]> {
      return (await this.call('GET /v1/conversations/:conversationId/notes', { params: { conversationId } })).notes
    }

    addNote(conversationId: string, text: string): Promise<ConversationNote> {
      return this.call('POST /v1/conversations/:conversationId/notes', { params: { conversationId }, body: { text } })
    }

    /** The bank's canned replies, which agents insert by typing "/" and a shortcut. */
    async listCannedReplies(): Promise<CannedReply[]> {
      return (await this.call('GET /v1/canned-replies')).replies
    }

    /** Conversations whose customer's name or public texts hold every word of `q`, among those the caller may see. */
    searchConversations(q: string, page: Omit<ConversationSearchQuery, 'q'> = {}): Promise<SearchPage> {
      return this.call('GET /v1/search/conversations', {
        query: { q, limit: page.limit ?? 20, offset: page.offset ?? 0 },
      })
    }

    /** A customer's conversations on every channel, newest first. */
    async customerConversations(customerId: string): Promise<Conversation[]> {
      return (await this.call('GET /v1/customers/:customerId/conversations', { params: { customerId } })).conversations
    }
  }
}
