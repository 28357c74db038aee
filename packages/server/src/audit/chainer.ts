import { type Kysely, sql } from 'kysely'
import type { Database } from '../platform/db/schema.ts'
import { ChainLinker, type CheckpointPolicy, emptyChainHead } from '../platform/hash-chain/linker.ts'
import type { SigningKey, TenantSigningKeys } from '../platform/keyring/signing-keys.ts'
import { recordHash } from './record-hash.ts'

export type { CheckpointPolicy } from '../platform/hash-chain/linker.ts'

const PAGE = 1000

/**
 * Links pending audit events into their tenants' chains: each gets the next sequence number, the previous record's
 * hash and its own, and joins the Merkle tree whose signed heads are the checkpoints. A chain is worked on by one node
 * at a time (its head row is locked, others skip it); everything for one page happens in one transaction.
 * Returns how many events were chained.
 */
export async function chainPendingEvents(
  db: Kysely<Database>,
  signers: TenantSigningKeys,
  policy: CheckpointPolicy,
): Promise<number> {
  const tenants = await db.selectFrom('audit_events').select('tenant_id').distinct().where('seq', 'is', null).execute()
  let chained = 0
  for (const { tenant_id: tenantId } of tenants) {
    const signer = await signers.for(tenantId)
    for (;;) {
      const count = await chainPage(db, signer, policy, tenantId)
      chained += count
      if (count < PAGE) break
    }
  }
  await checkpointQuietChains(db, signers, policy)
  return chained
}

/** Chains whose newest records have waited longer than the policy allows get a checkpoint without new events. */
async function checkpointQuietChains(db: Kysely<Database>, signers: TenantSigningKeys, policy: CheckpointPolicy) {
  const due = await db
    .selectFrom('audit_chains')
    .select('tenant_id')
    .whereRef('last_seq', '>', 'checkpoint_seq')
    .where('checkpoint_at', '<', new Date(Date.now() - policy.everySeconds * 1000))
    .execute()
  for (const { tenant_id: tenantId } of due) {
    const signer = await signers.for(tenantId)
    await db.transaction().execute(async (trx) => {
      const head = await lockHead(trx, tenantId)
      if (!head) return
      const linker = new ChainLinker('audit', tenantId, head, signer, policy)
      linker.checkpoint()
      await writeHead(trx, tenantId, linker)
    })
  }
}

function lockHead(trx: Kysely<Database>, tenantId: string) {
  return trx
    .selectFrom('audit_chains')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .forUpdate()
    .skipLocked()
    .executeTakeFirst()
}

async function writeHead(trx: Kysely<Database>, tenantId: string, linker: ChainLinker) {
  if (linker.checkpoints.length > 0) await trx.insertInto('audit_checkpoints').values(linker.checkpoints).execute()
  await trx.updateTable('audit_chains').set(linker.head()).where('tenant_id', '=', tenantId).execute()
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
      .values({ tenant_id: tenantId, ...emptyChainHead() })
      .onConflict((oc) => oc.column('tenant_id').doNothing())
      .execute()
    const head = await lockHead(trx, tenantId)
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

    const linker = new ChainLinker('audit', tenantId, head, signer, policy)
    const linked = pending.map((event, i) => ({
      id: Number(event.id),
      ...linker.link((previous, seq) => recordHash(previous, { ...event, seq }), i === pending.length - 1),
    }))
    await sql`
      update audit_events e set seq = v.seq, prev_hash = v.prev_hash, hash = v.hash
      from unnest(${linked.map((l) => l.id)}::bigint[], ${linked.map((l) => l.seq)}::bigint[],
                  ${linked.map((l) => l.prev)}::bytea[], ${linked.map((l) => l.hash)}::bytea[])
        as v (id, seq, prev_hash, hash)
      where e.id = v.id`.execute(trx)
    await writeHead(trx, tenantId, linker)
    return pending.length
  })
}
