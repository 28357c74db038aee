import type { MemberIdentity } from './member-credential.ts'

/**
 * Signals: typing and read indicators of a secure conversation. Each is an MLS application message of the group, so
 * only the members read it and its sender is authenticated by the group (the server relays ciphertext), but it is
 * ephemeral: relayed to the members connected now, never stored, archived, counted as unread or sent again.
 *
 * A signal takes a generation of its sender's key ratchet like any message; members that never see it (away, or the
 * archive member, which reads only the log) step over it when the sender's next message comes. MLS bounds that step
 * (KEY_RETENTION.maximumForwardRatchetSteps), so a member sends at most MAX_SIGNALS_BETWEEN_MESSAGES signals in a
 * conversation between two of its stored messages in one epoch.
 */
export type Signal =
  /** The sender is typing: show it for TYPING_SHOWN_MS, or until a message of theirs arrives. */
  | { kind: 'typing' }
  /**
   * The sender has read the conversation up to `seq`, the message the log holds there as `messageId`: a reader shows
   * it only under a message it has with that seq and id, so a number alone proves nothing.
   */
  | { kind: 'read'; seq: number; messageId: string }

/** A signal read from another member, with the identity the group authenticated. */
export interface SignalEvent {
  conversationId: string
  sender: MemberIdentity
  signal: Signal
}

/** Marks, in the MLS authenticated data, a message that is a signal: it is never shown as a message. */
export const SIGNAL_MARKER = 'strongroom/signal'
/** A typing indicator goes at most this often while the user types. */
export const TYPING_INTERVAL_MS = 3_000
/** How long a reader shows "is typing…" after the last indicator: a sender idle this long has stopped. */
export const TYPING_SHOWN_MS = 5_000
/** At most this many signals between two stored messages of one member in one epoch (a tenth of the ratchet bound). */
export const MAX_SIGNALS_BETWEEN_MESSAGES = 1_000

const MESSAGE_ID = /^[A-Za-z0-9_-]{1,64}$/

export function encodeSignal(signal: Signal): Uint8Array {
  const body = signal.kind === 'typing' ? { kind: 'typing' } : { kind: 'read', seq: signal.seq, id: signal.messageId }
  return new TextEncoder().encode(JSON.stringify(body))
}

/** The signal in a decrypted payload, or undefined for anything that is not exactly one. */
export function decodeSignal(bytes: Uint8Array): Signal | undefined {
  let body: unknown
  try {
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    return undefined
  }
  if (typeof body !== 'object' || body === null) return undefined
  const { kind, seq, id } = body as { kind?: unknown; seq?: unknown; id?: unknown }
  if (kind === 'typing') return { kind }
  if (kind !== 'read' || !Number.isSafeInteger(seq) || (seq as number) < 1) return undefined
  if (typeof id !== 'string' || !MESSAGE_ID.test(id)) return undefined
  return { kind, seq: seq as number, messageId: id }
}

/**
 * Paces a page's signals: a typing indicator at most once per TYPING_INTERVAL_MS per conversation, a read indicator
 * only when the seq read moves forward. Ask it before sending; it remembers what it let through.
 *
 * @example
 * const pacer = new SignalPacer()
 * textarea.oninput = () => { if (pacer.typing(id)) void secure.signal(id, { kind: 'typing' }) }
 */
export class SignalPacer {
  readonly #typedAt = new Map<string, number>()
  readonly #readSeq = new Map<string, number>()
  readonly #now: () => number

  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  /** Whether a typing indicator may go now. */
  typing(conversationId: string): boolean {
    const now = this.#now()
    if (now - (this.#typedAt.get(conversationId) ?? Number.NEGATIVE_INFINITY) < TYPING_INTERVAL_MS) return false
    this.#typedAt.set(conversationId, now)
    return true
  }

  /** A message went: the next keystroke may say "typing" again at once. */
  sent(conversationId: string): void {
    this.#typedAt.delete(conversationId)
  }

  /** Whether a read indicator for `seq` may go (it is further than the last one sent). */
  read(conversationId: string, seq: number): boolean {
    if (seq <= (this.#readSeq.get(conversationId) ?? 0)) return false
    this.#readSeq.set(conversationId, seq)
    return true
  }
}
