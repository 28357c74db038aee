import type { ChannelSimulator, PhoneMessage, SimulatedConnector, WebhookSignature } from '@strongroom/sdk/simulator'

/** How long one read of the thread waits on the server for the next message. */
const WAIT_SECONDS = 20
const RETRY_MS = 2000

export type ThreadState = 'connecting' | 'live' | 'retrying'

/**
 * One simulated phone's thread on one channel, followed live: each read waits on the server until the phone's next
 * message (either way) and the next read asks for what came after it. Like a real phone, it tells the provider that
 * the bank's messages arrived (a delivery receipt each), so the agent sees them delivered.
 */
export class PhoneThread {
  readonly messages: PhoneMessage[] = []
  state: ThreadState = 'connecting'
  readonly #simulator: ChannelSimulator
  readonly #connector: SimulatedConnector
  readonly #phone: string
  readonly #bank: string
  readonly #changed: () => void
  readonly #abort = new AbortController()
  /** What the bank's webhook answered the phone's own messages, for those the thread has not returned yet. */
  readonly #answers = new Map<string, number>()

  constructor(
    simulator: ChannelSimulator,
    target: { connector: SimulatedConnector; phone: string; bank: string },
    changed: () => void,
  ) {
    this.#simulator = simulator
    this.#connector = target.connector
    this.#phone = target.phone
    this.#bank = target.bank
    this.#changed = changed
    void this.#follow()
  }

  stop(): void {
    this.#abort.abort()
  }

  /** Sends a text from the phone to the bank; the thread shows it, with what the bank's webhook answered. */
  async send(text: string, signature: WebhookSignature): Promise<void> {
    const sent = await this.#simulator.send(this.#connector, { from: this.#phone, to: this.#bank, text, signature })
    const shown = this.messages.findIndex((m) => m.providerMessageId === sent.providerMessageId)
    const message = this.messages[shown]
    if (message) this.messages[shown] = { ...message, webhookStatus: sent.status }
    else this.#answers.set(sent.providerMessageId, sent.status)
    this.#changed()
  }

  async #follow(): Promise<void> {
    const { signal } = this.#abort
    let after = 0
    while (!signal.aborted) {
      try {
        const fresh = await this.#simulator.thread(this.#connector, this.#phone, {
          after,
          waitSeconds: WAIT_SECONDS,
          signal,
        })
        for (const message of fresh) {
          const answer = this.#answers.get(message.providerMessageId)
          this.messages.push(answer === undefined ? message : { ...message, webhookStatus: answer })
          after = Math.max(after, message.seq)
        }
        this.state = 'live'
        this.#changed()
        this.#acknowledge(fresh)
      } catch {
        if (signal.aborted) return
        this.state = 'retrying'
        this.#changed()
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS))
      }
    }
  }

  #acknowledge(fresh: readonly PhoneMessage[]): void {
    for (const message of fresh) {
      if (message.direction !== 'to-phone') continue
      // A lost receipt only leaves the agent's view at "sent", as with a real provider.
      void this.#simulator
        .receipt(this.#connector, { to: this.#bank, providerMessageId: message.providerMessageId, status: 'delivered' })
        .catch(() => undefined)
    }
  }
}
