import type { TrackedConsent } from './consent-tracker.ts'
import type { ShownMessage } from './session.ts'

/** One line of a conversation's timeline. */
export type TimelineItem =
  | { kind: 'message'; key: string; at: string; message: ShownMessage }
  /** Where the secure part starts: once, after the public history a pivot imported. */
  | { kind: 'divider'; key: string }
  | { kind: 'consent-asked'; key: string; at: string; tracked: TrackedConsent }
  | { kind: 'consent-outcome'; key: string; at: string; tracked: TrackedConsent }

/**
 * A conversation as one timeline: the public history a pivot imported first, at its own times, then one divider,
 * then the conversation's messages, payment requests and their outcomes in the order they happened.
 */
export function buildTimeline(messages: readonly ShownMessage[], consents: readonly TrackedConsent[]): TimelineItem[] {
  const imported = messages
    .filter((m) => m.public?.imported)
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.seq - b.seq)
  const events: Exclude<TimelineItem, { kind: 'divider' }>[] = messages
    .filter((m) => !m.public?.imported)
    .map((message) => ({ kind: 'message', key: `m${message.seq}`, at: message.createdAt, message }))
  for (const tracked of consents) {
    const { consent } = tracked
    events.push({ kind: 'consent-asked', key: `c${consent.id}`, at: consent.createdAt, tracked })
    const settledAt = consent.decidedAt ?? (consent.status === 'expired' ? consent.expiresAt : undefined)
    if (settledAt) events.push({ kind: 'consent-outcome', key: `o${consent.id}`, at: settledAt, tracked })
  }
  // Stable: messages keep their log order where their times are equal.
  events.sort((a, b) => a.at.localeCompare(b.at))
  const history: TimelineItem[] = imported.map((message) => ({
    kind: 'message',
    key: `m${message.seq}`,
    at: message.createdAt,
    message,
  }))
  return history.length > 0 ? [...history, { kind: 'divider', key: 'secure-divider' }, ...events] : events
}
