import { hash } from 'node:crypto'
import type { Kysely } from 'kysely'
import { cursorPages } from '../platform/db/cursor.ts'
import type { Database } from '../platform/db/schema.ts'
import { type ChainFailure, type ChainTrust, type ChainVerification, walkChain } from '../platform/hash-chain/walker.ts'
import { readWitnessFile } from '../platform/hash-chain/witness.ts'
import { verificationKeys } from '../platform/keyring/signing-keys.ts'
import type { ArchiveRow } from './open-records.ts'
import { archiveRecordHash, chainedFields } from './record-hash.ts'

/** An archive chain's verification, with how many records had their content deleted after retention. */
export type ArchiveVerification = ChainVerification & { deleted: number }

const PAGE = 5000

/**
 * Checks a tenant's archive without any archive key. On top of the chain walk (links, hashes, signed Merkle heads):
 * sealed content must still hash to what its record says, and content may be missing only where a deletion record
 * in the chain lists it. The first failure is named.
 */
export async function verifyArchiveChain(
  db: Kysely<Database>,
  tenantId: string,
  trust: ChainTrust,
  onProgress?: (done: number, total: number) => void,
): Promise<ArchiveVerification> {
  // One snapshot for the counts, the checkpoints and the records, read through one cursor however long the chain.
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute((trx) => walkArchiveChain(trx, tenantId, trust, onProgress))
}

async function walkArchiveChain(
  db: Kysely<Database>,
  tenantId: string,
  trust: ChainTrust,
  onProgress?: (done: number, total: number) => void,
): Promise<ArchiveVerification> {
  const records = db.selectFrom('archive_records').where('tenant_id', '=', tenantId)
  const counts = await records
    .select(({ fn }) => [fn.count<number>('seq').as('linked'), fn.countAll<number>().as('all')])
    .executeTakeFirstOrThrow()
  // What deletion records say was deleted; the walk checks those records themselves when it reaches them.
  const declaredDeleted = new Set<number>()
  for (const marker of await records.select('details').where('record_class', '=', 'deletion').execute()) {
    for (const seq of (JSON.parse(marker.details) as { deleted?: number[] }).deleted ?? []) declaredDeleted.add(seq)
  }
  let deleted = 0
  const checkContent = (record: ArchiveRow): ChainFailure | undefined => {
    const seq = Number(record.seq)
    if (record.content_hash === null) return undefined
    if (record.sealed === null) {
      deleted++
      if (declaredDeleted.has(seq)) return undefined
      return { seq, id: record.id, reason: 'content removed without a deletion record in the chain' }
    }
    if (hash('sha256', record.sealed, 'buffer').equals(record.content_hash)) return undefined
    return { seq, id: record.id, reason: 'sealed content altered' }
  }
  const verification = await walkChain<ArchiveRow>({
    kind: 'archive',
    tenantId,
    keys: trust.keys,
    witnessed: trust.witnessFile ? readWitnessFile(trust.witnessFile, 'archive', tenantId) : undefined,
    checkpoints: await db
      .selectFrom('archive_checkpoints')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .orderBy('tree_size')
      .execute(),
    total: Number(counts.linked),
    pending: Number(counts.all) - Number(counts.linked),
    pages: cursorPages(db, records.selectAll().where('seq', 'is not', null).orderBy('seq'), PAGE),
    recompute: (record, previous) => archiveRecordHash(previous, chainedFields(record)),
    check: checkContent,
    onProgress,
  })
  return { ...verification, deleted }
}

/** verifyArchiveChain with the stored checkpoint keys, saying when it ran. */
export async function verifyArchiveNow(
  db: Kysely<Database>,
  tenantId: string,
): Promise<ArchiveVerification & { verifiedAt: string }> {
  const verification = await verifyArchiveChain(db, tenantId, {
    keys: await verificationKeys(db, 'archive-checkpoint', { tenantId }),
  })
  return { ...verification, verifiedAt: new Date().toISOString() }
}

/** Every tenant with an archive chain. */
export async function archiveChains(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom('archive_chains').select('tenant_id').orderBy('tenant_id').execute()
  return rows.map((r) => r.tenant_id)
}
