import { type ConsentReceipt, type ConsentRequest, type StrongroomClient, verifyConsentReceipt } from '@strongroom/sdk'

/** A consent request as the console follows it: its latest state and, once approved, what its receipt proves. */
export interface TrackedConsent {
  consent: ConsentRequest
  /** Set once a receipt arrived: verified against the server's JWKS and the request, or why it did not verify. */
  receipt?: { verified: ConsentReceipt } | { error: string }
}

export type NewConsent = Parameters<StrongroomClient['requestConsent']>[0]

// Decisions do not arrive on the stream (the bank hears of them by webhook): the console asks, politely, at growing
// intervals, not at all while the tab is hidden, and stops once the request is decided or expired.
const POLL_MS = [1_000, 2_000, 3_000, 5_000, 8_000, 10_000]

/**
 * A conversation's consent requests, kept current until each is decided or expires, their receipts verified in the
 * browser with the server's published keys.
 */
export class ConsentTracker {
  readonly #client: StrongroomClient
  readonly #byConversation = new Map<string, TrackedConsent[]>()
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>()
  readonly #listeners = new Set<() => void>()
  #keys: ReturnType<StrongroomClient['receiptKeys']> | undefined
  #closed = false

  constructor(client: StrongroomClient) {
    this.#client = client
    document.addEventListener('visibilitychange', this.#onVisibility)
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** The conversation's requests, newest first. */
  of(conversationId: string): readonly TrackedConsent[] {
    return this.#byConversation.get(conversationId) ?? []
  }

  /**
   * Loads the conversation's requests from the server (those other staff or an earlier session asked for too), and
   * follows the pending ones. Called whenever the conversation is shown.
   */
  async load(conversationId: string): Promise<void> {
    const consents = await this.#client.listConsents(conversationId)
    const known = new Map(this.of(conversationId).map((t) => [t.consent.id, t]))
    const merged = consents.map((consent) => {
      const tracked = known.get(consent.id) ?? { consent }
      tracked.consent = consent
      known.delete(consent.id)
      return tracked
    })
    // Asked from here while the list was on its way: kept, in order.
    merged.push(...known.values())
    merged.sort((a, b) => b.consent.createdAt.localeCompare(a.consent.createdAt))
    this.#byConversation.set(conversationId, merged)
    this.#changed()
    for (const tracked of merged) {
      if (tracked.consent.status === 'pending' && !this.#timers.has(tracked.consent.id)) {
        this.#schedule(tracked.consent.id, 0)
      }
      if (tracked.consent.receipt && !tracked.receipt) {
        tracked.receipt = await this.#verify(tracked.consent)
        this.#changed()
      }
    }
  }

  async request(conversationId: string, input: NewConsent): Promise<ConsentRequest> {
    const consent = await this.#client.requestConsent({ ...input, conversationId })
    const list = this.#byConversation.get(conversationId) ?? []
    this.#byConversation.set(conversationId, [{ consent }, ...list])
    this.#changed()
    this.#schedule(consent.id, 0)
    return consent
  }

  close(): void {
    this.#closed = true
    for (const timer of this.#timers.values()) clearTimeout(timer)
    this.#timers.clear()
    this.#listeners.clear()
    document.removeEventListener('visibilitychange', this.#onVisibility)
  }

  #changed(): void {
    for (const listener of this.#listeners) listener()
  }

  #find(consentId: string): TrackedConsent | undefined {
    for (const list of this.#byConversation.values()) {
      const found = list.find((t) => t.consent.id === consentId)
      if (found) return found
    }
    return undefined
  }

  #schedule(consentId: string, attempt: number): void {
    if (this.#closed) return
    const delay = POLL_MS[Math.min(attempt, POLL_MS.length - 1)] as number
    this.#timers.set(
      consentId,
      setTimeout(() => void this.#poll(consentId, attempt), delay),
    )
  }

  async #poll(consentId: string, attempt: number): Promise<void> {
    this.#timers.delete(consentId)
    const tracked = this.#find(consentId)
    if (!tracked || this.#closed) return
    if (document.hidden) return // #onVisibility asks again when the agent comes back
    try {
      tracked.consent = await this.#client.getConsent(consentId)
    } catch {
      // A failed look is retried at the next interval: the server holds the truth.
    }
    if (tracked.consent.status === 'pending') this.#schedule(consentId, attempt + 1)
    else if (tracked.consent.receipt && !tracked.receipt) tracked.receipt = await this.#verify(tracked.consent)
    this.#changed()
  }

  async #verify(consent: ConsentRequest): Promise<TrackedConsent['receipt']> {
    const receipt = consent.receipt as string
    try {
      this.#keys ??= this.#client.receiptKeys()
      try {
        return { verified: await verifyConsentReceipt(receipt, await this.#keys, consent) }
      } catch (error) {
        if ((error as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw error
        // The receipt key rotated since the keys were fetched: fetch them once more.
        this.#keys = this.#client.receiptKeys()
        return { verified: await verifyConsentReceipt(receipt, await this.#keys, consent) }
      }
    } catch (error) {
      this.#keys = undefined
      return { error: (error as Error).message }
    }
  }

  #onVisibility = (): void => {
    if (document.hidden) return
    for (const list of this.#byConversation.values()) {
      for (const { consent } of list) {
        if (consent.status === 'pending' && !this.#timers.has(consent.id)) this.#schedule(consent.id, 0)
      }
    }
  }
}
