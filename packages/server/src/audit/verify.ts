import type { Kysely } from 'kysely'
import { cursorPages } from '../platform/db/cursor.ts'
import type { Database } from '../platform/db/schema.ts'
import { type ChainTrust, type ChainVerification, walkChain } from '../platform/hash-chain/walker.ts'
import { readWitnessFile } from '../platform/hash-chain/witness.ts'
import { recordHash } from './record-hash.ts'

export type { ChainVerification } from '../platform/hash-chain/walker.ts'

const PAGE = 5000

/**
 * Recomputes one tenant's audit chain from its first record: every sequence number present once and in order, every
 * record linked to the one before and hashing to what it says, and every signed checkpoint matching the Merkle tree
 * head of the records it covers. Stops at the first failure and names it.
 */
export async function verifyAuditChain(
  db: Kysely<Database>,
  tenantId: string,
  trust: ChainTrust,
  onProgress?: (done: number, total: number) => void,
): Promise<ChainVerification> {
  // One snapshot for the counts, the checkpoints and the records, read through one cursor however long the chain.
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute((trx) => walkAuditChain(trx, tenantId, trust, onProgress))
}

async function walkAuditChain(
  db: Kysely<Database>,
  tenantId: string,
  trust: ChainTrust,
  onProgress?: (done: number, total: number) => void,
): Promise<ChainVerification> {
  const counts = await db
    .selectFrom('audit_events')
    .select(({ fn }) => [fn.count<number>('seq').as('linked'), fn.countAll<number>().as('all')])
    .where('tenant_id', '=', tenantId)
    .executeTakeFirstOrThrow()
  return walkChain({
    kind: 'audit',
    tenantId,
    keys: trust.keys,
    witnessed: trust.witnessFile ? readWitnessFile(trust.witnessFile, 'audit', tenantId) : undefined,
    checkpoints: await db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .orderBy('tree_size')
      .execute(),
    total: Number(counts.linked),
    pending: Number(counts.all) - Number(counts.linked),
    pages: cursorPages(
      db,
      db
        .selectFrom('audit_events')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('seq', 'is not', null)
        .orderBy('seq'),
      PAGE,
    ),
    recompute: (record, previous) => recordHash(previous, record),
    onProgress,
  })
}

/** Every chain there is: each tenant's and the system's. */
export async function auditChains(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom('audit_events').select('tenant_id').distinct().orderBy('tenant_id').execute()
  return rows.map((r) => r.tenant_id)
}
