import { type Kysely, sql } from 'kysely'

/**
 * The version an App Attest key was attested for: Apple attests the app id, not its version, so the version the
 * genuine app's attestation covered is kept with the key and later assertions must claim that same version (an app
 * updated since attests a new key). Keys attested before this migration take the version their device's latest
 * App Attest verdict carried, which the evidence covered then; a key without one attests again.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('device_attestations').addColumn('bound_app_version', 'text').execute()
  await sql`
    update device_attestations as a set bound_app_version = v.app_version
    from device_integrity_verdicts as v
    where a.format = 'apple-appattest' and v.tenant_id = a.tenant_id and v.device_id = a.device_id
      and v.format in ('apple-appattest', 'apple-appattest-assertion')
  `.execute(db)
}

export async function down(): Promise<void> {
  throw new Error('the bound app version migration cannot be reverted')
}
