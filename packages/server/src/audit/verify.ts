import type { KeyObject } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Database } from '../platform/db/schema.ts'
import { type ChainFailure, ChainWalker } from '../platform/hash-chain/walker.ts'
import { recordHash } from './record-hash.ts'

export interface ChainVerification {
  tenantId: string
  ok: boolean
  records: number
  checkpoints: number
  /** Events recorded but not yet chained (they are chained within a second or so of being recorded). */
  pending: number
  /** The first thing that does not hold, naming the record or checkpoint. */
  failure?: { seq: number; id: number | null; reason: string }
}

const PAGE = 5000

/**
 * Recomputes one tenant's audit chain from its first record: every sequence number present once and in order, every
 * record linked to the one before and hashing to what it says, and every signed checkpoint matching the Merkle tree
 * head of the records it covers. Stops at the first failure and names it.
 */
export async function verifyAuditChain(
  db: Kysely<Database>,
  tenantId: string,
  keys: Map<string, KeyObject>,
  onProgress?: (done: number, total: number) => void,
): Promise<ChainVerification> {
  const [{ total, pending }] = (await db
    .selectFrom('audit_events')
    .select(({ fn }) => [fn.count<number>('seq').as('total'), fn.countAll<number>().as('all')])
    .where('tenant_id', '=', tenantId)
    .execute()
    .then((rows) => rows.map((r) => ({ total: Number(r.total), pending: Number(r.all) - Number(r.total) })))) as [
    { total: number; pending: number },
  ]
  const checkpoints = await db
    .selectFrom('audit_checkpoints')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('tree_size')
    .execute()
  const walker = new ChainWalker('audit', tenantId, checkpoints, keys)
  const result = (failure?: ChainFailure): ChainVerification => ({
    tenantId,
    ok: failure === undefined,
    records: walker.expected - 1,
    checkpoints: checkpoints.length,
    pending,
    ...(failure ? { failure: { ...failure, id: failure.id === null ? null : Number(failure.id) } } : {}),
  })

  for (;;) {
    const page = await db
      .selectFrom('audit_events')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('seq', '>=', walker.expected)
      .orderBy('seq')
      .limit(PAGE)
      .execute()
    if (page.length === 0) break
    for (const record of page) {
      const failure = walker.step(record, (previous) => recordHash(previous, record))
      if (failure) return result(failure)
    }
    onProgress?.(walker.expected - 1, total)
  }
  return result(walker.end())
}

/** Every chain there is: each tenant's and the system's. */
export async function auditChains(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom('audit_events').select('tenant_id').distinct().orderBy('tenant_id').execute()
  return rows.map((r) => r.tenant_id)
}
