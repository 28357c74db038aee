import { type Kysely, sql } from 'kysely'

/**
 * The audit log. An event is written in the transaction of the action it records, unchained (seq and hashes null);
 * the chainer then gives it the next sequence number of its tenant's chain and links it to the previous record by
 * SHA-256. Signed checkpoints (Merkle tree heads) cover the chain every N records or T seconds.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('audit_events')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'bigint')
    .addColumn('occurred_at', 'timestamptz', (c) => c.notNull())
    .addColumn('actor_kind', 'text', (c) => c.notNull())
    .addColumn('actor_id', 'text')
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('target_kind', 'text')
    .addColumn('target_id', 'text')
    .addColumn('outcome', 'text', (c) => c.notNull().check(sql`outcome in ('success', 'failure', 'denied')`))
    .addColumn('reason', 'text')
    .addColumn('details', 'text', (c) => c.notNull())
    .addColumn('prev_hash', 'bytea')
    .addColumn('hash', 'bytea')
    .addUniqueConstraint('audit_events_chain_uq', ['tenant_id', 'seq'])
    .execute()
  await sql`create index audit_events_pending_idx on audit_events (tenant_id, id) where seq is null`.execute(db)

  await db.schema
    .createTable('audit_chains')
    .addColumn('tenant_id', 'text', (c) => c.primaryKey())
    .addColumn('last_seq', 'bigint', (c) => c.notNull())
    .addColumn('last_hash', 'bytea', (c) => c.notNull())
    .addColumn('frontier', 'bytea', (c) => c.notNull())
    .addColumn('checkpoint_seq', 'bigint', (c) => c.notNull())
    .addColumn('checkpoint_at', 'timestamptz', (c) => c.notNull())
    .execute()

  await db.schema
    .createTable('audit_checkpoints')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('tree_size', 'bigint', (c) => c.notNull())
    .addColumn('root_hash', 'bytea', (c) => c.notNull())
    .addColumn('signed_at', 'timestamptz', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('signature', 'bytea', (c) => c.notNull())
    .addPrimaryKeyConstraint('audit_checkpoints_pk', ['tenant_id', 'tree_size'])
    .execute()

  await db.schema
    .createTable('signing_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('public_key', 'bytea', (c) => c.notNull())
    .addColumn('kek_id', 'text', (c) => c.notNull())
    .addColumn('wrapped_private_key', 'bytea', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the audit migration cannot be reverted')
}
