import type { ReceivedSignal } from '@strongroom/sdk'
import { type MemberIdentity, type Signal, type SignalEvent, SignalPacer, TYPING_SHOWN_MS } from '@strongroom/sdk/mls'

/** What sends and reads signals: the browser's MLS member (`BrowserMlsMember`). */
export interface SignalChannel {
  signal(conversationId: string, signal: Signal): Promise<boolean>
  readSignal(received: ReceivedSignal): Promise<SignalEvent | undefined>
}

/** A message as the indicators need it: its place in the log, its id there, and whether this side sent it. */
export interface IndicatedMessage {
  seq: number
  id: string
  mine: boolean
}

/**
 * Typing and read indicators of a page's secure conversations (see the SDK's signals.ts): what this side says, paced
 * (typing at most every 3 s, read only when it moves on and the page is in view), and what the other side said:
 * who is typing, for TYPING_SHOWN_MS or until their message comes, and the last message they read. Nothing here is
 * stored: a reload forgets it, and the other side says it again when it next types or reads.
 */
export class ConversationIndicators {
  readonly #channel: SignalChannel
  readonly #otherSide: (sender: MemberIdentity) => boolean
  readonly #changed: () => void
  readonly #pacer = new SignalPacer()
  /** Per conversation: who of the other side is typing, until when. */
  readonly #typing = new Map<string, { sender: MemberIdentity; until: number; timer: ReturnType<typeof setTimeout> }>()
  /** Per conversation: the furthest message the other side said it read. */
  readonly #read = new Map<string, { seq: number; messageId: string }>()

  /** `otherSide` says whose signals this page shows (the customer's device in the console, the bank's staff in the chat). */
  constructor(channel: SignalChannel, otherSide: (sender: MemberIdentity) => boolean, changed: () => void) {
    this.#channel = channel
    this.#otherSide = otherSide
    this.#changed = changed
  }

  /** The user typed in the conversation's composer. */
  typed(conversationId: string): void {
    if (!this.#pacer.typing(conversationId)) return
    // One that did not go (the stream reconnecting, the group not joined yet) may go at the next keystroke.
    void this.#channel
      .signal(conversationId, { kind: 'typing' })
      .then((went) => went || this.#pacer.sent(conversationId))
  }

  /** The user sent a message: their next keystroke says "typing" again at once. */
  sent(conversationId: string): void {
    this.#pacer.sent(conversationId)
  }

  /** The user sees the conversation up to this message: said once per message, and only while the page is in view. */
  seen(conversationId: string, last: IndicatedMessage | undefined): void {
    if (!last || last.mine || document.visibilityState !== 'visible') return
    if (!this.#pacer.read(conversationId, last.seq)) return
    void this.#channel.signal(conversationId, { kind: 'read', seq: last.seq, messageId: last.id })
  }

  /** A signal from the stream: decrypted and authenticated by the group, or dropped. */
  async received(received: ReceivedSignal): Promise<void> {
    const event = await this.#channel.readSignal(received).catch(() => undefined)
    if (!event || !this.#otherSide(event.sender)) return
    const { conversationId, signal } = event
    if (signal.kind === 'typing') {
      clearTimeout(this.#typing.get(conversationId)?.timer)
      const timer = setTimeout(() => this.stoppedTyping(conversationId), TYPING_SHOWN_MS)
      this.#typing.set(conversationId, { sender: event.sender, until: Date.now() + TYPING_SHOWN_MS, timer })
    } else if (signal.seq > (this.#read.get(conversationId)?.seq ?? 0)) {
      this.#read.set(conversationId, { seq: signal.seq, messageId: signal.messageId })
    }
    this.#changed()
  }

  /** Their message came (or they went quiet): they are no longer typing. */
  stoppedTyping(conversationId: string): void {
    const typing = this.#typing.get(conversationId)
    if (!typing) return
    clearTimeout(typing.timer)
    this.#typing.delete(conversationId)
    this.#changed()
  }

  /** Who of the other side is typing in the conversation now, if anyone. */
  typing(conversationId: string): MemberIdentity | undefined {
    return this.#typing.get(conversationId)?.sender
  }

  /**
   * The seq of this side's message to mark "Read": the last one at or before what the other side read, when the
   * message they named is one this page holds with that very id (a claim that does not match the log is ignored).
   */
  readMark(conversationId: string, messages: readonly IndicatedMessage[]): number | undefined {
    const read = this.#read.get(conversationId)
    if (!read || !messages.some((m) => m.seq === read.seq && m.id === read.messageId)) return undefined
    return messages.findLast((m) => m.mine && m.seq <= read.seq)?.seq
  }

  close(): void {
    for (const typing of this.#typing.values()) clearTimeout(typing.timer)
    this.#typing.clear()
  }
}
