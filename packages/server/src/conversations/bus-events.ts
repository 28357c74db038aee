import type { ConversationUpdate, Message } from '@strongroom/sdk/protocol'
import type { Bus } from '../platform/bus/bus.ts'

/**
 * What the conversations capability says on the bus. These are wake-ups: the database holds the truth, and a node
 * that misses one catches up from it.
 */
export const MESSAGE_SUBJECT_PREFIX = 'sr.msg.'
export const MEMBER_SUBJECT_PREFIX = 'sr.member.'
export const MEMBER_LEFT_SUBJECT_PREFIX = 'sr.member-left.'
export const UPDATE_SUBJECT_PREFIX = 'sr.update.'

/** A message as clients see it, on the bus, the stream and the API alike. */
export type WireMessage = Message

export interface MessagesCommittedEvent {
  tenantId: string
  messages: WireMessage[]
  /** With tracing on: each message's commit span (W3C traceparent) by message id, never sent to a client. */
  traces?: Record<string, string>
}

export interface MemberAddedEvent {
  tenantId: string
  conversationId: string
  member: { kind: 'device' | 'staff'; id: string }
}

/** A member taken out of one conversation (a transferred agent): its open streams stop delivering it. */
export type MemberLeftEvent = MemberAddedEvent

const encoder = new TextEncoder()

export function publishMessagesCommitted(bus: Bus, event: MessagesCommittedEvent): void {
  bus.publish(MESSAGE_SUBJECT_PREFIX + event.tenantId, encoder.encode(JSON.stringify(event)))
}

/**
 * A test, without parsing, of whether a `MessagesCommittedEvent` as published holds a message of one of these content
 * types, for a subscriber that reads only those (the archive member): `JSON.stringify` writes each as
 * `"contentType":"…"`, and nothing else in the event can hold that text unescaped.
 */
export function contentTypeTest(contentTypes: string[]): (payload: Uint8Array) => boolean {
  const needles = contentTypes.map((type) => Buffer.from(`"contentType":${JSON.stringify(type)}`))
  return (payload) => {
    const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
    return needles.some((needle) => bytes.includes(needle))
  }
}

export function publishMemberAdded(
  bus: Bus,
  tenantId: string,
  conversationId: string,
  member: MemberAddedEvent['member'],
): void {
  const event: MemberAddedEvent = { tenantId, conversationId, member }
  bus.publish(MEMBER_SUBJECT_PREFIX + tenantId, encoder.encode(JSON.stringify(event)))
}

export function publishMemberLeft(
  bus: Bus,
  tenantId: string,
  conversationId: string,
  member: MemberLeftEvent['member'],
): void {
  const event: MemberLeftEvent = { tenantId, conversationId, member }
  bus.publish(MEMBER_LEFT_SUBJECT_PREFIX + tenantId, encoder.encode(JSON.stringify(event)))
}

/**
 * A conversation's payment request, pivot link, assignment, status or a member's markers changed (published after the
 * change committed): the conversation's members connected anywhere hear of it on their streams, and, with
 * `customerId`, every device of that customer (a payment request asked outside any conversation has a null `conversationId`).
 */
export interface ConversationUpdateEvent {
  tenantId: string
  conversationId: string | null
  customerId?: string | undefined
  update: ConversationUpdate
  /** Streams that already know (their own acknowledgements moved the markers told): by session id, not told again. */
  knownTo?: string[] | undefined
}

export function publishConversationUpdate(bus: Bus, event: ConversationUpdateEvent): void {
  bus.publish(UPDATE_SUBJECT_PREFIX + event.tenantId, encoder.encode(JSON.stringify(event)))
}
