import type { Kysely } from 'kysely'

/**
 * A tenant's data key can be retired once `keys reencrypt` moved everything it sealed to a newer key: the row stays
 * (versions are never reused) with its wrapped form erased and the time it was retired.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('tenant_keys').addColumn('retired_at', 'timestamptz').execute()
}

export async function down(): Promise<void> {
  throw new Error('the key retirement migration cannot be reverted')
}
