import { createHash, type KeyObject } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Database } from '../platform/db/schema.ts'
import { type ChainFailure, ChainWalker } from '../platform/hash-chain/walker.ts'
import { archiveRecordHash, chainedFields } from './record-hash.ts'

export interface ArchiveVerification {
  tenantId: string
  ok: boolean
  records: number
  checkpoints: number
  /** Records appended but not yet linked (the chainer links them within a second or so). */
  pending: number
  /** Records whose content was deleted after retention (their hashes stay in the chain). */
  deleted: number
  failure?: { seq: number; id: number | null; reason: string }
}

const PAGE = 5000

/**
 * Recomputes one tenant's archive chain from its first record, with no key: each record's link and hash, the hash of
 * its sealed content, that content removed only where a deletion record in the chain says so, and every signed
 * checkpoint against the Merkle tree head of the records it covers. Stops at the first failure and names it.
 */
export async function verifyArchiveChain(
  db: Kysely<Database>,
  tenantId: string,
  keys: Map<string, KeyObject>,
  onProgress?: (done: number, total: number) => void,
): Promise<ArchiveVerification> {
  const counts = await db
    .selectFrom('archive_records')
    .select(({ fn }) => [fn.count<number>('seq').as('linked'), fn.countAll<number>().as('all')])
    .where('tenant_id', '=', tenantId)
    .executeTakeFirstOrThrow()
  const total = Number(counts.linked)
  const checkpoints = await db
    .selectFrom('archive_checkpoints')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('tree_size')
    .execute()
  // What deletion records say was deleted; they are themselves checked as the walk reaches them.
  const declaredDeleted = new Set<number>()
  const markers = await db
    .selectFrom('archive_records')
    .select('details')
    .where('tenant_id', '=', tenantId)
    .where('record_class', '=', 'deletion')
    .execute()
  for (const marker of markers) {
    for (const seq of (JSON.parse(marker.details) as { deleted?: number[] }).deleted ?? []) declaredDeleted.add(seq)
  }
  const walker = new ChainWalker('archive', tenantId, checkpoints, keys)
  let deleted = 0
  const result = (failure?: ChainFailure): ArchiveVerification => ({
    tenantId,
    ok: failure === undefined,
    records: walker.expected - 1,
    checkpoints: checkpoints.length,
    pending: Number(counts.all) - total,
    deleted,
    ...(failure ? { failure: { ...failure, id: failure.id === null ? null : Number(failure.id) } } : {}),
  })

  for (;;) {
    const page = await db
      .selectFrom('archive_records')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('seq', '>=', walker.expected)
      .orderBy('seq')
      .limit(PAGE)
      .execute()
    if (page.length === 0) break
    for (const record of page) {
      const failure = walker.step(record, (previous) => archiveRecordHash(previous, chainedFields(record)))
      if (failure) return result(failure)
      const seq = Number(record.seq)
      if (record.content_hash === null) continue
      if (record.sealed === null) {
        if (!declaredDeleted.has(seq)) {
          return result({ seq, id: record.id, reason: 'content removed without a deletion record in the chain' })
        }
        deleted++
      } else if (!createHash('sha256').update(record.sealed).digest().equals(record.content_hash)) {
        return result({ seq, id: record.id, reason: 'sealed content altered' })
      }
    }
    onProgress?.(walker.expected - 1, total)
  }
  return result(walker.end())
}

/** Every tenant with an archive chain. */
export async function archiveChains(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom('archive_chains').select('tenant_id').orderBy('tenant_id').execute()
  return rows.map((r) => r.tenant_id)
}
