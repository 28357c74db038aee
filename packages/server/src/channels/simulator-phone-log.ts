import type { PublicChannelConnector } from '@strongroom/sdk/protocol'
import type { PhoneMessage } from '@strongroom/sdk/simulator'

/** Enough for a developer's session; the oldest go first. */
const KEPT = 5000

/**
 * Dev mode only: what the simulated phones sent to the bank and received from it, in one ordered log in memory, so
 * that the simulator page (or a test) reads a phone's thread and follows it live by waiting for what comes next.
 */
export class PhoneLog {
  #messages: PhoneMessage[] = []
  #seq = 0
  #waiters = new Set<{ check: () => void; done: () => void }>()

  record(message: Omit<PhoneMessage, 'seq'>): PhoneMessage {
    const recorded = { ...message, seq: ++this.#seq }
    this.#messages.push(recorded)
    if (this.#messages.length > KEPT) this.#messages.shift()
    for (const waiter of this.#waiters) waiter.check()
    return recorded
  }

  find(connector: PublicChannelConnector, providerMessageId: string): PhoneMessage | undefined {
    return this.#messages.find((m) => m.connector === connector && m.providerMessageId === providerMessageId)
  }

  /** A phone's messages on a channel after `after`, oldest first. */
  list(connector: PublicChannelConnector, phone: string, after: number): PhoneMessage[] {
    return this.#messages.filter((m) => m.seq > after && m.connector === connector && m.phone === phone)
  }

  /** Like `list`, but when there is nothing yet, waits up to `ms` for the phone's next message. */
  async next(connector: PublicChannelConnector, phone: string, after: number, ms: number): Promise<PhoneMessage[]> {
    let found = this.list(connector, phone, after)
    if (found.length > 0 || ms <= 0) return found
    await new Promise<void>((resolve) => {
      const waiter = {
        check: () => {
          found = this.list(connector, phone, after)
          if (found.length > 0) waiter.done()
        },
        done: () => {
          clearTimeout(timer)
          this.#waiters.delete(waiter)
          resolve()
        },
      }
      const timer = setTimeout(waiter.done, ms)
      this.#waiters.add(waiter)
    })
    return found
  }

  /** Answers every waiting reader now (the server is closing). */
  release(): void {
    for (const waiter of this.#waiters) waiter.done()
  }
}
