import { type Kysely, sql } from 'kysely'

/**
 * Passkeys (WebAuthn credentials) of customers and staff, and the single-use challenges of their ceremonies.
 * A credential id belongs to one owner in a tenant; lookups are always by tenant, so another tenant's credential is
 * never found. Challenges are stored as hashes and used up by one conditional update.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('passkey_credentials')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('credential_id', 'text', (c) => c.notNull())
    .addColumn('owner_kind', 'text', (c) => c.notNull().check(sql`owner_kind in ('customer', 'staff')`))
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('public_key', 'bytea', (c) => c.notNull())
    .addColumn('sign_count', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('transports', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('aaguid', 'text', (c) => c.notNull())
    .addColumn('backup_eligible', 'boolean', (c) => c.notNull())
    .addColumn('backed_up', 'boolean', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_used_at', 'timestamptz')
    .addUniqueConstraint('passkey_credentials_tenant_credential_uq', ['tenant_id', 'credential_id'])
    .execute()
  await db.schema
    .createIndex('passkey_credentials_owner_idx')
    .on('passkey_credentials')
    .columns(['tenant_id', 'owner_kind', 'owner_id'])
    .execute()
  // No foreign key on the tenant: a staff sign-in names its tenant before anyone is authenticated, and an unknown
  // tenant must get a challenge like a known one (nothing to enumerate). Expired rows are purged by housekeeping.
  await db.schema
    .createTable('passkey_challenges')
    .addColumn('challenge_hash', 'bytea', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('purpose', 'text', (c) => c.notNull().check(sql`purpose in ('register', 'authenticate', 'sign-in')`))
    .addColumn('owner_kind', 'text')
    .addColumn('owner_id', 'text')
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the passkeys migration cannot be reverted')
}
