import {
  type ConsentReceipt,
  type ConsentRequest,
  type NewConsent,
  type StaffClient,
  verifyConsentReceipt,
} from '@strongroom/sdk'

/** A consent request as the console follows it: its latest state and, once approved, what its receipt proves. */
export interface TrackedConsent {
  consent: ConsentRequest
  /** Set once a receipt arrived: verified against the server's JWKS and the request, or why it did not verify. */
  receipt?: { verified: ConsentReceipt } | { error: string }
}

/**
 * A conversation's consent requests, kept current from the stream (an update names the request that was asked or
 * decided, which is then read), their receipts verified in the browser with the server's published keys. A request
 * that runs out shows as expired at its time, without asking.
 */
export class ConsentTracker {
  readonly #client: StaffClient
  readonly #byConversation = new Map<string, TrackedConsent[]>()
  readonly #expiryTimers = new Map<string, ReturnType<typeof setTimeout>>()
  readonly #listeners = new Set<() => void>()
  #keys: ReturnType<StaffClient['receiptKeys']> | undefined
  #closed = false

  constructor(client: StaffClient) {
    this.#client = client
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
      this.#watchExpiry(tracked)
      if (tracked.consent.receipt && !tracked.receipt) {
        tracked.receipt = await this.#verify(tracked.consent)
        this.#changed()
      }
    }
  }

  async request(conversationId: string, input: NewConsent): Promise<ConsentRequest> {
    const consent = await this.#client.requestConsent({ ...input, conversationId })
    const list = this.#byConversation.get(conversationId) ?? []
    if (!list.some((t) => t.consent.id === consent.id)) this.#byConversation.set(conversationId, [{ consent }, ...list])
    this.#changed()
    return consent
  }

  /** The stream said a request was asked or decided: read it (and verify its receipt) if its conversation is shown. */
  async updated(conversationId: string | null, consentId: string): Promise<void> {
    if (this.#closed || conversationId === null || !this.#byConversation.has(conversationId)) return
    const consent = await this.#client.getConsent(consentId)
    const list = this.#byConversation.get(conversationId) ?? []
    let tracked = list.find((t) => t.consent.id === consentId)
    if (tracked) tracked.consent = consent
    else {
      tracked = { consent }
      list.unshift(tracked)
      this.#byConversation.set(conversationId, list)
    }
    this.#watchExpiry(tracked)
    this.#changed()
    if (consent.receipt && !tracked.receipt) {
      tracked.receipt = await this.#verify(consent)
      this.#changed()
    }
  }

  /** After the stream reconnected (updates are not replayed): what is shown is read again. */
  async resync(): Promise<void> {
    await Promise.all([...this.#byConversation.keys()].map((id) => this.load(id)))
  }

  /** Whether a request of the conversation was declined as "This wasn't me". */
  fraudIn(conversationId: string): boolean {
    return this.of(conversationId).some((t) => t.consent.fraudReported)
  }

  close(): void {
    this.#closed = true
    for (const timer of this.#expiryTimers.values()) clearTimeout(timer)
    this.#expiryTimers.clear()
    this.#listeners.clear()
  }

  #changed(): void {
    for (const listener of this.#listeners) listener()
  }

  /** A pending request shows as expired at its time (the server says so too when asked). */
  #watchExpiry(tracked: TrackedConsent): void {
    const { consent } = tracked
    clearTimeout(this.#expiryTimers.get(consent.id))
    if (consent.status !== 'pending') return
    const left = Date.parse(consent.expiresAt) - Date.now()
    const expire = () => {
      this.#expiryTimers.delete(consent.id)
      if (tracked.consent.status !== 'pending') return
      tracked.consent = { ...tracked.consent, status: 'expired' }
      this.#changed()
    }
    // Timers beyond about 24.8 days overflow; a request lives 24 hours at most.
    this.#expiryTimers.set(consent.id, setTimeout(expire, Math.max(0, Math.min(left, 2 ** 31 - 1))))
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
}
