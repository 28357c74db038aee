import { type KeyObject, verify } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Database } from '../platform/db/schema.ts'
import { leafHash, MerkleFrontier } from './merkle.ts'
import { checkpointStatement, GENESIS_HASH, recordHash } from './record-hash.ts'

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
  const result = (failure?: ChainVerification['failure'], records = 0): ChainVerification => ({
    tenantId,
    ok: failure === undefined,
    records,
    checkpoints: checkpoints.length,
    pending,
    ...(failure ? { failure } : {}),
  })

  const frontier = new MerkleFrontier()
  let previous: Buffer = GENESIS_HASH
  let expected = 1
  let nextCheckpoint = 0
  for (;;) {
    const page = await db
      .selectFrom('audit_events')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('seq', '>=', expected)
      .orderBy('seq')
      .limit(PAGE)
      .execute()
    if (page.length === 0) break
    for (const record of page) {
      const seq = Number(record.seq)
      const id = Number(record.id)
      if (seq !== expected) return result({ seq: expected, id: null, reason: 'record missing (sequence gap)' })
      if (!record.prev_hash || !previous.equals(record.prev_hash)) {
        return result({ seq, id, reason: 'not linked to the previous record (moved, or one before it changed)' })
      }
      const hash = recordHash(previous, record)
      if (!record.hash || !hash.equals(record.hash)) return result({ seq, id, reason: 'record altered' })
      frontier.append(leafHash(hash))
      previous = hash
      for (; checkpoints[nextCheckpoint] && Number(checkpoints[nextCheckpoint]?.tree_size) === seq; nextCheckpoint++) {
        const checkpoint = checkpoints[nextCheckpoint] as (typeof checkpoints)[number]
        const failure = checkCheckpoint(tenantId, checkpoint, frontier, keys)
        if (failure) return result({ seq, id, reason: failure })
      }
      expected++
    }
    onProgress?.(expected - 1, total)
  }
  const beyond = checkpoints[nextCheckpoint]
  if (beyond) {
    return result(
      {
        seq: expected,
        id: null,
        reason: `records missing: checkpoint covers ${beyond.tree_size}, chain ends at ${expected - 1}`,
      },
      expected - 1,
    )
  }
  return result(undefined, expected - 1)
}

function checkCheckpoint(
  tenantId: string,
  checkpoint: {
    tree_size: number | string
    root_hash: Uint8Array
    signed_at: Date | string
    key_id: string
    signature: Uint8Array
  },
  frontier: MerkleFrontier,
  keys: Map<string, KeyObject>,
): string | undefined {
  const key = keys.get(checkpoint.key_id)
  if (!key) return `checkpoint ${checkpoint.tree_size} is signed by an unknown key`
  const statement = checkpointStatement({
    tenantId,
    treeSize: Number(checkpoint.tree_size),
    rootHash: checkpoint.root_hash,
    signedAt: new Date(checkpoint.signed_at),
    keyId: checkpoint.key_id,
  })
  if (!verify(null, statement, key, Buffer.from(checkpoint.signature))) {
    return `checkpoint ${checkpoint.tree_size} has a bad signature`
  }
  if (!frontier.root().equals(checkpoint.root_hash)) {
    return `records up to ${checkpoint.tree_size} do not match their signed checkpoint`
  }
  return undefined
}

/** Every chain there is: each tenant's and the system's. */
export async function auditChains(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom('audit_events').select('tenant_id').distinct().orderBy('tenant_id').execute()
  return rows.map((r) => r.tenant_id)
}
