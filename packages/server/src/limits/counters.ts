import { sql } from 'kysely'
import type { Db } from '../platform/db/database.ts'

/** A counter to add to: its key, the length of its fixed window, and how many hits to add. */
export interface CounterHit {
  key: string
  windowSeconds: number
  hits: number
}

/** A counter's total in its current window, as every node sees it, and when that window ends (epoch seconds). */
export interface CounterTotal {
  hits: number
  resetsAt: number
}

const windowStartOf = (nowSeconds: number, windowSeconds: number) =>
  Math.floor(nowSeconds / windowSeconds) * windowSeconds

/**
 * Adds hits to counters shared by every node, in one statement: an upsert per key into the key's current fixed
 * window, returning the totals all nodes have added. The increment is atomic, so that of many parallel requests
 * exactly one sees the total that crosses a limit. Keys are written in one order, so that two nodes adding to the
 * same keys never deadlock.
 */
export async function addHits(
  db: Db,
  hits: readonly CounterHit[],
  now = Date.now(),
): Promise<Map<string, CounterTotal>> {
  const totals = new Map<string, CounterTotal>()
  if (hits.length === 0) return totals
  const nowSeconds = Math.floor(now / 1000)
  const rows = [...new Map(hits.map((hit) => [hit.key, hit])).values()]
    .sort((a, b) => (a.key < b.key ? -1 : 1))
    .map((hit) => {
      const windowStart = windowStartOf(nowSeconds, hit.windowSeconds)
      return {
        key: hit.key,
        window_start: windowStart,
        hits: hit.hits,
        expires_at: new Date((windowStart + hit.windowSeconds) * 1000),
      }
    })
  const returned = await db
    .insertInto('rate_limit_counters')
    .values(rows)
    .onConflict((oc) =>
      oc.columns(['key', 'window_start']).doUpdateSet({ hits: sql<number>`rate_limit_counters.hits + excluded.hits` }),
    )
    .returning(['key', 'hits', 'expires_at'])
    .execute()
  for (const row of returned) {
    totals.set(row.key, { hits: Number(row.hits), resetsAt: Math.floor(new Date(row.expires_at).getTime() / 1000) })
  }
  return totals
}

/** Takes one hit back from each key's current window (an attempt that succeeded is not a guess). */
export async function takeBackHits(db: Db, hits: readonly Omit<CounterHit, 'hits'>[], now = Date.now()): Promise<void> {
  const nowSeconds = Math.floor(now / 1000)
  for (const hit of hits) {
    await db
      .updateTable('rate_limit_counters')
      .set({ hits: sql<number>`hits - 1` })
      .where('key', '=', hit.key)
      .where('window_start', '=', windowStartOf(nowSeconds, hit.windowSeconds))
      .where('hits', '>', 0)
      .execute()
  }
}

/** Removes the counters of windows that have ended (housekeeping). */
export async function purgeEndedCounters(ctx: { db: Db }): Promise<void> {
  await ctx.db.deleteFrom('rate_limit_counters').where('expires_at', '<', new Date()).execute()
}
