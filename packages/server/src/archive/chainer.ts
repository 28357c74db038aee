import { type Kysely, sql } from 'kysely'
import type { ServerContext } from '../platform/context.ts'
import type { Database } from '../platform/db/schema.ts'
import { startChainTask } from '../platform/hash-chain/chain-task.ts'
import { ChainLinker, type CheckpointPolicy, emptyChainHead } from '../platform/hash-chain/linker.ts'
import { openWitness, witnessCheckpoints } from '../platform/hash-chain/witness.ts'
import type { SigningKey, TenantSigningKeys } from '../platform/keyring/signing-keys.ts'
import { archiveRecordHash, chainedFields } from './record-hash.ts'

const PAGE = 2000

/**
 * Links appended archive records into their tenant's chain (next sequence number, previous hash, own hash, Merkle
 * leaf) and signs checkpoints (Ed25519 'archive-checkpoint' key) every N records or T seconds. One node at a time
 * works on a chain (its head row is locked, others skip it); a page is linked in one transaction. Returns how many
 * records were linked.
 */
export async function chainArchiveRecords(
  db: Kysely<Database>,
  signers: TenantSigningKeys,
  policy: CheckpointPolicy,
): Promise<number> {
  const tenants = await db
    .selectFrom('archive_records')
    .select('tenant_id')
    .distinct()
    .where('seq', 'is', null)
    .execute()
  let linked = 0
  for (const { tenant_id: tenantId } of tenants) {
    const signer = await signers.for(tenantId)
    for (let count = PAGE; count === PAGE; linked += count) count = await linkPage(db, signer, policy, tenantId)
  }
  const quiet = await db
    .selectFrom('archive_chains')
    .select('tenant_id')
    .whereRef('last_seq', '>', 'checkpoint_seq')
    .where('checkpoint_at', '<', new Date(Date.now() - policy.everySeconds * 1000))
    .execute()
  for (const { tenant_id: tenantId } of quiet) {
    await linkPage(db, await signers.for(tenantId), policy, tenantId, { checkpointOnly: true })
  }
  return linked
}

async function linkPage(
  db: Kysely<Database>,
  signer: SigningKey,
  policy: CheckpointPolicy,
  tenantId: string,
  options: { checkpointOnly?: boolean } = {},
): Promise<number> {
  return db.transaction().execute(async (trx) => {
    await trx
      .insertInto('archive_chains')
      .values({ tenant_id: tenantId, ...emptyChainHead() })
      .onConflict((oc) => oc.column('tenant_id').doNothing())
      .execute()
    const head = await trx
      .selectFrom('archive_chains')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .forUpdate()
      .skipLocked()
      .executeTakeFirst()
    if (!head) return 0
    const linker = new ChainLinker('archive', tenantId, head, signer, policy)
    const pending = options.checkpointOnly
      ? []
      : await trx
          .selectFrom('archive_records')
          .select([
            'id',
            'tenant_id',
            'record_class',
            'source_ref',
            'conversation_id',
            'conversation_seq',
            'customer_id',
            'occurred_at',
            'key_id',
            'content_hash',
            'content_digest',
            'details',
          ])
          .where('tenant_id', '=', tenantId)
          .where('seq', 'is', null)
          .orderBy('id')
          .limit(PAGE)
          .execute()
    if (options.checkpointOnly) linker.checkpoint()
    const links = pending.map((record, i) => ({
      id: Number(record.id),
      ...linker.link(
        (previous, seq) => archiveRecordHash(previous, chainedFields({ ...record, seq })),
        i === pending.length - 1,
      ),
    }))
    if (links.length > 0) {
      await sql`
        update archive_records r set seq = v.seq, prev_hash = v.prev_hash, hash = v.hash
        from unnest(${links.map((l) => l.id)}::bigint[], ${links.map((l) => l.seq)}::bigint[],
                    ${links.map((l) => l.prev)}::bytea[], ${links.map((l) => l.hash)}::bytea[])
          as v (id, seq, prev_hash, hash)
        where r.id = v.id`.execute(trx)
    }
    if (linker.checkpoints.length > 0) await trx.insertInto('archive_checkpoints').values(linker.checkpoints).execute()
    await trx.updateTable('archive_chains').set(linker.head()).where('tenant_id', '=', tenantId).execute()
    return links.length
  })
}

/**
 * Links what is pending for a tenant and signs a checkpoint over the whole chain now, so an export can name a signed
 * tree head that covers its records. Returns the newest checkpoint.
 */
export async function checkpointArchiveNow(db: Kysely<Database>, signer: SigningKey, tenantId: string) {
  const policy = { everyRecords: Number.MAX_SAFE_INTEGER, everySeconds: Number.MAX_SAFE_INTEGER }
  for (let count = PAGE; count === PAGE; ) count = await linkPage(db, signer, policy, tenantId)
  await linkPage(db, signer, policy, tenantId, { checkpointOnly: true })
  return db
    .selectFrom('archive_checkpoints')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('tree_size', 'desc')
    .limit(1)
    .executeTakeFirst()
}

/**
 * Runs the archive chainer on this node every quarter second, then sends new checkpoints to the witness when one is
 * configured; stopping links what is still pending.
 */
export function startArchiveChainer(ctx: Pick<ServerContext, 'db' | 'config' | 'log'>, signers: TenantSigningKeys) {
  const policy = {
    everyRecords: ctx.config.archiveCheckpointRecords,
    everySeconds: ctx.config.archiveCheckpointSeconds,
  }
  const witness = openWitness(ctx.config)
  return startChainTask('archive chainer', ctx.log, async (seal) => {
    await chainArchiveRecords(ctx.db, signers, seal ? { ...policy, everySeconds: 0 } : policy)
    if (witness?.due()) await witnessCheckpoints(ctx.db, 'archive', witness)
  })
}
