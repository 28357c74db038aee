import type { Kysely } from 'kysely'

/**
 * Hardware attestation: the bank's apps as Apple and Google know them (so an attestation can be matched to the app
 * it must come from), and each device's attested key with its App Attest counter. Runtime secrets (sealed with the
 * tenant data key) and the devices' keys for receiving them. Certificate pin sets.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('integrity_apps')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('app_id', 'text', (c) => c.notNull())
    .addColumn('apple_team_id', 'text')
    .addColumn('apple_bundle_id', 'text')
    .addColumn('android_package', 'text')
    .addColumn('android_signing_digests', 'text')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('integrity_apps_pk', ['tenant_id', 'app_id'])
    .execute()
  await db.schema
    .createTable('device_attestations')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id'))
    .addColumn('format', 'text', (c) => c.notNull())
    .addColumn('app_id', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('public_jwk', 'text', (c) => c.notNull())
    .addColumn('counter', 'bigint', (c) => c.notNull())
    .addColumn('security_level', 'text', (c) => c.notNull())
    .addColumn('attested_at', 'timestamptz', (c) => c.notNull())
    .addColumn('asserted_at', 'timestamptz')
    .addPrimaryKeyConstraint('device_attestations_pk', ['tenant_id', 'device_id'])
    .execute()
  await db.schema
    .createTable('runtime_secrets')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('sealed_value', 'bytea', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('runtime_secrets_pk', ['tenant_id', 'name'])
    .execute()
  await db.schema
    .createTable('device_secret_keys')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id'))
    .addColumn('public_jwk', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('device_secret_keys_pk', ['tenant_id', 'device_id'])
    .execute()
  // Each bank's integrity policy (what each risk signal leads to), as a validated JSON document.
  await db.schema
    .createTable('integrity_policies')
    .addColumn('tenant_id', 'text', (c) => c.primaryKey().references('tenants.id'))
    .addColumn('document', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute()
  // Signed certificate pin sets for the deployment's API hosts, newest served.
  await db.schema
    .createTable('pin_sets')
    .addColumn('version', 'integer', (c) => c.primaryKey())
    .addColumn('document', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the attestation migration cannot be reverted')
}
