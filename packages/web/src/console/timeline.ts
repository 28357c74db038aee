import type { TrackedConsent } from './consent-tracker.ts'
import type { ShownMessage } from './session.ts'

/** One line of a customer's timeline, with the conversation (and so the channel) it belongs to. */
export type TimelineItem =
  | { kind: 'message'; key: string; at: string; conversationId: string; message: ShownMessage }
  /** Where the secure part starts: once, after the public history a pivot imported. */
  | { kind: 'divider'; key: string }
  | { kind: 'consent-asked'; key: string; at: string; conversationId: string; tracked: TrackedConsent }
  | { kind: 'consent-outcome'; key: string; at: string; conversationId: string; tracked: TrackedConsent }

/** One conversation of the customer: its messages and its payment requests. */
export interface TimelinePart {
  conversationId: string
  messages: readonly ShownMessage[]
  consents: readonly TrackedConsent[]
  /** A secure conversation a pivot moved the customer into: the timeline marks where it starts. */
  securePart?: boolean
}

/**
 * A customer's conversations as one timeline: their messages, payment requests and outcomes in the order they
 * happened. With one conversation, the public history a pivot imported comes first, at its own times, then one
 * divider; with several, that history is left out, as the public conversation itself is shown beside it, and the
 * divider stands where the secure conversation a pivot made begins.
 */
export function buildTimeline(parts: readonly TimelinePart[]): TimelineItem[] {
  const several = parts.length > 1
  const history: TimelineItem[] = []
  const events: Exclude<TimelineItem, { kind: 'divider' }>[] = []
  for (const { conversationId, messages, consents } of parts) {
    for (const message of messages) {
      const item = { kind: 'message', key: `${conversationId}:m${message.seq}`, at: message.createdAt } as const
      if (!message.public?.imported) events.push({ ...item, conversationId, message })
      else if (!several) history.push({ ...item, conversationId, message })
    }
    for (const tracked of consents) {
      const { consent } = tracked
      events.push({ kind: 'consent-asked', key: `c${consent.id}`, at: consent.createdAt, conversationId, tracked })
      const settledAt = consent.decidedAt ?? (consent.status === 'expired' ? consent.expiresAt : undefined)
      if (settledAt)
        events.push({ kind: 'consent-outcome', key: `o${consent.id}`, at: settledAt, conversationId, tracked })
    }
  }
  // Stable: messages keep their log order where their times are equal.
  events.sort((a, b) => a.at.localeCompare(b.at))
  history.sort((a, b) =>
    a.kind === 'message' && b.kind === 'message' ? a.at.localeCompare(b.at) || a.message.seq - b.message.seq : 0,
  )
  const divider = { kind: 'divider', key: 'secure-divider' } as const
  if (!several) return history.length > 0 ? [...history, divider, ...events] : events
  const secure = new Set(parts.filter((part) => part.securePart).map((part) => part.conversationId))
  if (secure.size === 0) return events
  const start = events.findIndex((event) => secure.has(event.conversationId))
  return start === -1 ? [...events, divider] : [...events.slice(0, start), divider, ...events.slice(start)]
}
