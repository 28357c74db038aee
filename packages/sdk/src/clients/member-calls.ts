import type { PublicMessageListQuery } from '../channel-protocol.ts'
import { bytesToBase64, randomId } from '../encoding.ts'
import { StrongroomError } from '../errors.ts'
import type { DeviceStateChangeBody } from '../identity-protocol.ts'
import type { Conversation, ConversationListQuery, Message, MessageListQuery, SecureGroup } from '../protocol.ts'
import type { PublicMessage } from '../public-channels.ts'
import type { MessageStream, OutgoingMessage, StreamOptions } from '../stream.ts'
import type { ClientClass } from './client-core.ts'

/** Which messages `listMessages` reads: those `after` a sequence number (and up to `until`), at most `limit`. */
export type MessageRange = MessageListQuery

/** The body of a device's state change: the reason, when one is given. */
function reasonBody(reason: string | undefined): DeviceStateChangeBody {
  return reason === undefined ? {} : { reason }
}

/** What a conversation's members may call: devices and staff (the access table's `member` rule), never backends. */
export function withMemberCalls<Base extends ClientClass>(base: Base) {
  return class MemberCalls extends base {
    getConversation(conversationId: string) {
      return this.call('GET /v1/conversations/:conversationId', { params: { conversationId } })
    }

    /**
     * The caller's conversations, newest first, a page at a time: pass the last one's id as `before` for the next.
     * `scope: 'all'` lists every conversation of the bank, for staff holding conversations:all (supervisors,
     * compliance); `status` only the open, pending or resolved ones.
     */
    async listConversations(page: ConversationListQuery = {}): Promise<Conversation[]> {
      return (await this.call('GET /v1/conversations', { query: page })).conversations
    }

    /** Appends a message over HTTP. The stream's `send` does the same over the open socket. */
    sendMessage(conversationId: string, message: OutgoingMessage): Promise<Message> {
      return this.call('POST /v1/conversations/:conversationId/messages', {
        params: { conversationId },
        body: {
          clientMessageId: message.clientMessageId ?? randomId(),
          contentType: message.contentType,
          ciphertext: bytesToBase64(message.ciphertext),
          ...(message.expiresAt ? { expiresAt: message.expiresAt.toISOString() } : {}),
        },
      })
    }

    async listMessages(conversationId: string, range: MessageRange = {}): Promise<Message[]> {
      const route = 'GET /v1/conversations/:conversationId/messages'
      return (await this.call(route, { params: { conversationId }, query: range })).messages
    }

    markRead(conversationId: string, readSeq: number) {
      return this.call('POST /v1/conversations/:conversationId/markers', {
        params: { conversationId },
        body: { readSeq },
      })
    }

    /**
     * The conversation's MLS group and its epoch, or undefined while the conversation is not end-to-end encrypted.
     */
    async getSecureGroup(conversationId: string): Promise<SecureGroup | undefined> {
      try {
        return await this.call('GET /v1/conversations/:conversationId/e2e/group', { params: { conversationId } })
      } catch (error) {
        if (error instanceof StrongroomError && error.type.endsWith('/e2e/no-group')) return undefined
        throw error
      }
    }

    /**
     * The public-channel messages of a conversation with their text: its thread on SMS, WhatsApp or Messenger, or the
     * history a pivot imported into a secure conversation. Text DLP masked stays masked (`masked` names what); the
     * bank's own messages carry their delivery state.
     *
     * @example
     * const [latest] = await client.listPublicMessages(message.conversationId, { after: message.seq - 1, limit: 1 })
     */
    async listPublicMessages(conversationId: string, range: PublicMessageListQuery = {}): Promise<PublicMessage[]> {
      const route = 'GET /v1/conversations/:conversationId/public-messages'
      return (await this.call(route, { params: { conversationId }, query: range })).messages
    }

    /**
     * Revokes a device: staff any of the tenant's (`devices:revoke`), a device its own customer's (a lost phone, from
     * the tablet).
     */
    revokeDevice(deviceId: string, reason?: string) {
      return this.call('POST /v1/devices/:deviceId/revoke', { params: { deviceId }, body: reasonBody(reason) })
    }

    /**
     * Suspends a device for a while (the customer mislaid it): it is cut off at once everywhere, but keeps its
     * conversations and its local store. Staff any of the tenant's devices, a device its own customer's.
     */
    suspendDevice(deviceId: string, reason?: string) {
      return this.call('POST /v1/devices/:deviceId/suspend', { params: { deviceId }, body: reasonBody(reason) })
    }

    /** Resumes a suspended device (found again): staff, or another active device of the same customer. */
    resumeDevice(deviceId: string, reason?: string) {
      return this.call('POST /v1/devices/:deviceId/resume', { params: { deviceId }, body: reasonBody(reason) })
    }

    /**
     * Opens the realtime stream: every message of the caller's conversations in order, across reconnects, with no
     * gap and no duplicate.
     */
    stream(options: StreamOptions = {}): MessageStream {
      return this.transport.stream(options)
    }
  }
}
