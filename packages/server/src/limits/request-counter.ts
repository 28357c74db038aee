import type { Db } from '../platform/db/database.ts'
import type { Logger } from '../platform/logging.ts'
import { addHits } from './counters.ts'

interface LocalCount {
  windowStart: number
  windowSeconds: number
  /** The total every node had added when this node last synchronised. */
  shared: number
  /** Hits on this node since then. */
  pending: number
}

/** How often a node adds its hits to the shared counters and reads the others'. */
export const REQUEST_COUNT_SYNC_MS = 1000

/**
 * Counts every request against limits shared by all nodes without a database write per request: a node counts in
 * memory and, once a second, adds what it counted to the shared counters in one statement and reads back the totals
 * of all nodes. A limit is therefore exact on one node and may be passed by what other nodes count within that
 * second; the attempts the tighter limits count (guesses) are counted in the database one by one instead.
 */
export class RequestCounter {
  readonly #counts = new Map<string, LocalCount>()
  readonly #timer: NodeJS.Timeout
  #syncing: Promise<void> = Promise.resolve()

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
  ) {
    this.#timer = setInterval(() => {
      this.#syncing = this.sync()
    }, REQUEST_COUNT_SYNC_MS)
    this.#timer.unref()
  }

  /** Counts one request; says when the window ends if this request passes the limit. */
  hit(key: string, limit: number, windowSeconds: number, now = Date.now()): { retryAfterSeconds: number } | undefined {
    const nowSeconds = Math.floor(now / 1000)
    const windowStart = Math.floor(nowSeconds / windowSeconds) * windowSeconds
    let count = this.#counts.get(key)
    if (!count || count.windowStart !== windowStart) {
      count = { windowStart, windowSeconds, shared: 0, pending: 0 }
      this.#counts.set(key, count)
    }
    count.pending++
    if (count.shared + count.pending <= limit) return undefined
    return { retryAfterSeconds: Math.max(1, windowStart + windowSeconds - nowSeconds) }
  }

  /** Adds this node's hits to the shared counters and takes in the totals; forgets windows that have ended. */
  async sync(now = Date.now()): Promise<void> {
    const nowSeconds = Math.floor(now / 1000)
    const due = [...this.#counts.entries()].filter(([key, count]) => {
      if (count.windowStart + count.windowSeconds <= nowSeconds) {
        this.#counts.delete(key)
        return false
      }
      return count.pending > 0 || count.shared > 0
    })
    if (due.length === 0) return
    const sent = new Map(due.map(([key, count]) => [key, count.pending]))
    try {
      const totals = await addHits(
        this.db,
        due.map(([key, count]) => ({ key, windowSeconds: count.windowSeconds, hits: count.pending })),
        now,
      )
      for (const [key, count] of due) {
        const total = totals.get(key)
        count.pending -= sent.get(key) ?? 0
        if (total && count.windowStart + count.windowSeconds === total.resetsAt) count.shared = total.hits
      }
    } catch (error) {
      // Counting goes on locally; the hits are added at the next sync.
      this.log.warn({ err: error }, 'rate-limit counters could not be shared')
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer)
    await this.#syncing
    await this.sync()
  }
}
