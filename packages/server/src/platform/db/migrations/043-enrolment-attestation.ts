import type { Kysely } from 'kysely'

/**
 * Android Key Attestation at enrolment: the Keystore attests a key only when it generates it, so the app asks for a
 * challenge with its enrolment code before it generates the device key (the challenge names the device id the code
 * reserved; that device has no row yet). The attested versionCode is kept with the device's attestation, for the
 * app-version switch.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('enrolment_challenges')
    .addColumn('challenge_hash', 'bytea', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .execute()
  await db.schema.alterTable('device_attestations').addColumn('version_code', 'integer').execute()
}

export async function down(): Promise<void> {
  throw new Error('the enrolment attestation migration cannot be reverted')
}
