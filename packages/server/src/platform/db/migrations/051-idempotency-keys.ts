import type { Kysely } from 'kysely'

/**
 * Idempotency keys (IETF draft-ietf-httpapi-idempotency-key-header): one row per principal and key, written in the
 * transaction of the create it guards, holding a fingerprint of the request and the response (sealed with the
 * tenant's data key) to replay when a client sends the same request again. Rows live a bounded time and are purged.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('idempotency_keys')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('principal', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('fingerprint', 'bytea', (c) => c.notNull())
    .addColumn('status', 'integer', (c) => c.notNull())
    .addColumn('response', 'bytea', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['tenant_id', 'principal', 'key'])
    .execute()
  await db.schema.createIndex('idempotency_keys_expiry').on('idempotency_keys').column('expires_at').execute()
}

export async function down(): Promise<void> {
  throw new Error('the idempotency-key migration cannot be reverted')
}
