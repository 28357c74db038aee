import type { Kysely } from 'kysely'

/** Single-use attestation challenges, stored as hashes. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('integrity_challenges')
    .addColumn('challenge_hash', 'bytea', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id'))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the integrity migration cannot be reverted')
}
