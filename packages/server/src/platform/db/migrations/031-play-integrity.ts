import type { Kysely } from 'kysely'

/**
 * Each Android app a tenant registers may carry its Play Integrity keys from the Play Console: the AES-256 decryption
 * key (sealed with the tenant's data key: whoever holds it can read every verdict) and the EC verification key.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('integrity_apps')
    .addColumn('play_decryption_key', 'bytea')
    .addColumn('play_verification_key', 'text')
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the Play Integrity migration cannot be reverted')
}
