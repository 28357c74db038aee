import type { Kysely } from 'kysely'

/**
 * Rate-limit counters every node shares: one row per key (an IP address, a device, a customer, a tenant, with the
 * action it counts) and fixed window, incremented by an atomic upsert. Rows live for their window and are purged.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('rate_limit_counters')
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('window_start', 'bigint', (c) => c.notNull())
    .addColumn('hits', 'integer', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('rate_limit_counters_pk', ['key', 'window_start'])
    .execute()
  await db.schema.createIndex('rate_limit_counters_expiry').on('rate_limit_counters').column('expires_at').execute()
}

export async function down(): Promise<void> {
  throw new Error('the rate-limit migration cannot be reverted')
}
