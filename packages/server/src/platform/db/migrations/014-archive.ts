import { type Kysely, sql } from 'kysely'

/**
 * The compliance archive: records of every conversation (secure and public) and membership change, appended and then
 * linked per tenant by SHA-256 (seq and hashes null until the archive chainer links them), with signed Merkle
 * checkpoints. Content is sealed under archive data keys (one per customer, so that erasing a customer is destroying
 * one key) wrapped by the archive's own key-encryption key. Retention per record class, legal holds.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('archive_records')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('seq', 'bigint')
    .addColumn('record_class', 'text', (c) =>
      c
        .notNull()
        .check(sql`record_class in ('secure-message', 'public-message', 'membership-change', 'deletion', 'erasure')`),
    )
    .addColumn('source_ref', 'text', (c) => c.notNull())
    .addColumn('conversation_id', 'text')
    .addColumn('conversation_seq', 'bigint')
    .addColumn('customer_id', 'text')
    .addColumn('occurred_at', 'timestamptz', (c) => c.notNull())
    .addColumn('key_id', 'text')
    .addColumn('sealed', 'bytea')
    .addColumn('content_hash', 'bytea')
    .addColumn('content_digest', 'bytea')
    .addColumn('details', 'text', (c) => c.notNull())
    .addColumn('prev_hash', 'bytea')
    .addColumn('hash', 'bytea')
    .addColumn('deleted_at', 'timestamptz')
    .addUniqueConstraint('archive_records_chain_uq', ['tenant_id', 'seq'])
    .addUniqueConstraint('archive_records_source_uq', ['tenant_id', 'source_ref'])
    .execute()
  await sql`create index archive_records_pending_idx on archive_records (tenant_id, id) where seq is null`.execute(db)
  await sql`create index archive_records_customer_idx on archive_records (tenant_id, customer_id, occurred_at)`.execute(
    db,
  )
  await sql`create index archive_records_conversation_idx on archive_records (tenant_id, conversation_id, occurred_at)`.execute(
    db,
  )
  await sql`create index archive_records_expiry_idx on archive_records (tenant_id, record_class, occurred_at)
    where deleted_at is null`.execute(db)

  await db.schema
    .createTable('archive_chains')
    .addColumn('tenant_id', 'text', (c) => c.primaryKey())
    .addColumn('last_seq', 'bigint', (c) => c.notNull())
    .addColumn('last_hash', 'bytea', (c) => c.notNull())
    .addColumn('frontier', 'bytea', (c) => c.notNull())
    .addColumn('checkpoint_seq', 'bigint', (c) => c.notNull())
    .addColumn('checkpoint_at', 'timestamptz', (c) => c.notNull())
    .execute()

  await db.schema
    .createTable('archive_checkpoints')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('tree_size', 'bigint', (c) => c.notNull())
    .addColumn('root_hash', 'bytea', (c) => c.notNull())
    .addColumn('signed_at', 'timestamptz', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('signature', 'bytea', (c) => c.notNull())
    .addPrimaryKeyConstraint('archive_checkpoints_pk', ['tenant_id', 'tree_size'])
    .execute()

  // A customer's archive data key; destroying it (wrapped_key null) is the customer's erasure.
  await db.schema
    .createTable('archive_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('kek_id', 'text')
    .addColumn('wrapped_key', 'bytea')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('destroyed_at', 'timestamptz')
    .execute()
  await sql`create unique index archive_keys_live_uq on archive_keys (tenant_id, scope) where destroyed_at is null`.execute(
    db,
  )

  await db.schema
    .createTable('archive_retention')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('record_class', 'text', (c) => c.notNull())
    .addColumn('retention_days', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('archive_retention_pk', ['tenant_id', 'record_class'])
    .execute()

  await db.schema
    .createTable('archive_holds')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('scope_kind', 'text', (c) => c.notNull().check(sql`scope_kind in ('customer', 'conversation')`))
    .addColumn('scope_id', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('placed_by', 'text', (c) => c.notNull())
    .addColumn('placed_at', 'timestamptz', (c) => c.notNull())
    .addColumn('released_by', 'text')
    .addColumn('released_at', 'timestamptz')
    .execute()
  await sql`create index archive_holds_active_idx on archive_holds (tenant_id, scope_kind, scope_id)
    where released_at is null`.execute(db)
}

export async function down(): Promise<void> {
  throw new Error('the archive migration cannot be reverted')
}
