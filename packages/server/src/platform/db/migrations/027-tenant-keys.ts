import type { Kysely } from 'kysely'

/**
 * Receipts and checkpoints are signed by each bank's own keys (`signing_keys.tenant_id`; null for the deployment's
 * keys, which signed everything before). A tenant's data key can be retired once `keys reencrypt` moved everything it sealed to a newer key: the row stays
 * (versions are never reused) with its wrapped form erased and the time it was retired.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('tenant_keys').addColumn('retired_at', 'timestamptz').execute()
  await db.schema.alterTable('signing_keys').addColumn('tenant_id', 'text').execute()
  await db.schema
    .createIndex('signing_keys_purpose_tenant')
    .on('signing_keys')
    .columns(['purpose', 'tenant_id'])
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the per-tenant keys and key retirement migration cannot be reverted')
}
