import { sign } from 'node:crypto'
import { type Kysely, sql } from 'kysely'
import type { Database } from '../platform/db/schema.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import { leafHash, MerkleFrontier } from './merkle.ts'
import { checkpointStatement, GENESIS_HASH, recordHash } from './record-hash.ts'

export interface CheckpointPolicy {
  /** A signed checkpoint at least every this many records… */
  everyRecords: number
  /** …and, when there are new records, at least this often. */
  everySeconds: number
}

const PAGE = 1000

/**
 * Links pending audit events into their tenants' chains: each gets the next sequence number, the previous record's
 * hash and its own, and joins the Merkle tree whose signed heads are the checkpoints. A chain is worked on by one node
 * at a time (its head row is locked, others skip it); everything for one page happens in one transaction.
 * Returns how many events were chained.
 */
export async function chainPendingEvents(
  db: Kysely<Database>,
  signer: SigningKey,
  policy: CheckpointPolicy,
): Promise<number> {
  const tenants = await db.selectFrom('audit_events').select('tenant_id').distinct().where('seq', 'is', null).execute()
  let chained = 0
  for (const { tenant_id: tenantId } of tenants) {
    for (;;) {
      const count = await chainPage(db, signer, policy, tenantId)
      chained += count
      if (count < PAGE) break
    }
  }
  await checkpointQuietChains(db, signer, policy)
  return chained
}

/** Chains whose newest records have waited longer than the policy allows get a checkpoint without new events. */
async function checkpointQuietChains(db: Kysely<Database>, signer: SigningKey, policy: CheckpointPolicy) {
  const due = await db
    .selectFrom('audit_chains')
    .select('tenant_id')
    .whereRef('last_seq', '>', 'checkpoint_seq')
    .where('checkpoint_at', '<', new Date(Date.now() - policy.everySeconds * 1000))
    .execute()
  for (const { tenant_id: tenantId } of due) {
    await db.transaction().execute(async (trx) => {
      const head = await trx
        .selectFrom('audit_chains')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .forUpdate()
        .skipLocked()
        .executeTakeFirst()
      if (!head || Number(head.last_seq) === Number(head.checkpoint_seq)) return
      const treeSize = Number(head.last_seq)
      const checkpoint = signCheckpoint(signer, tenantId, MerkleFrontier.deserialize(treeSize, head.frontier))
      await trx.insertInto('audit_checkpoints').values(checkpoint).execute()
      await trx
        .updateTable('audit_chains')
        .set({ checkpoint_seq: treeSize, checkpoint_at: checkpoint.signed_at })
        .where('tenant_id', '=', tenantId)
        .execute()
    })
  }
}

function signCheckpoint(signer: SigningKey, tenantId: string, frontier: MerkleFrontier) {
  const rootHash = frontier.root()
  const signedAt = new Date()
  const treeSize = frontier.size
  const statement = checkpointStatement({ tenantId, treeSize, rootHash, signedAt, keyId: signer.id })
  return {
    tenant_id: tenantId,
    tree_size: treeSize,
    root_hash: rootHash,
    signed_at: signedAt,
    key_id: signer.id,
    signature: sign(null, statement, signer.privateKey),
  }
}

async function chainPage(
  db: Kysely<Database>,
  signer: SigningKey,
  policy: CheckpointPolicy,
  tenantId: string,
): Promise<number> {
  return db.transaction().execute(async (trx) => {
    await trx
      .insertInto('audit_chains')
      .values({
        tenant_id: tenantId,
        last_seq: 0,
        last_hash: GENESIS_HASH,
        frontier: Buffer.alloc(0),
        checkpoint_seq: 0,
        checkpoint_at: new Date(),
      })
      .onConflict((oc) => oc.column('tenant_id').doNothing())
      .execute()
    const head = await trx
      .selectFrom('audit_chains')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .forUpdate()
      .skipLocked()
      .executeTakeFirst()
    if (!head) return 0
    const pending = await trx
      .selectFrom('audit_events')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('seq', 'is', null)
      .orderBy('id')
      .limit(PAGE)
      .execute()
    if (pending.length === 0) return 0

    let seq = Number(head.last_seq)
    let previous: Buffer = Buffer.from(head.last_hash)
    const frontier = MerkleFrontier.deserialize(seq, head.frontier)
    let checkpointSeq = Number(head.checkpoint_seq)
    let checkpointAt = new Date(head.checkpoint_at)
    const linked: { id: number; seq: number; prev: Buffer; hash: Buffer }[] = []
    const checkpoints: ReturnType<typeof signCheckpoint>[] = []
    for (const event of pending) {
      seq += 1
      const hash = recordHash(previous, { ...event, seq })
      linked.push({ id: Number(event.id), seq, prev: previous, hash })
      frontier.append(leafHash(hash))
      previous = hash
      const now = new Date()
      const due =
        seq - checkpointSeq >= policy.everyRecords ||
        (event === pending[pending.length - 1] && now.getTime() - checkpointAt.getTime() >= policy.everySeconds * 1000)
      if (due) {
        const checkpoint = signCheckpoint(signer, tenantId, frontier)
        checkpoints.push(checkpoint)
        checkpointSeq = seq
        checkpointAt = checkpoint.signed_at
      }
    }
    await sql`
      update audit_events e set seq = v.seq, prev_hash = v.prev_hash, hash = v.hash
      from unnest(${linked.map((l) => l.id)}::bigint[], ${linked.map((l) => l.seq)}::bigint[],
                  ${linked.map((l) => l.prev)}::bytea[], ${linked.map((l) => l.hash)}::bytea[])
        as v (id, seq, prev_hash, hash)
      where e.id = v.id`.execute(trx)
    if (checkpoints.length > 0) await trx.insertInto('audit_checkpoints').values(checkpoints).execute()
    await trx
      .updateTable('audit_chains')
      .set({
        last_seq: seq,
        last_hash: previous,
        frontier: frontier.serialize(),
        checkpoint_seq: checkpointSeq,
        checkpoint_at: checkpointAt,
      })
      .where('tenant_id', '=', tenantId)
      .execute()
    return pending.length
  })
}
