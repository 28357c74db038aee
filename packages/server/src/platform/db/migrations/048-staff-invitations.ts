import type { Kysely } from 'kysely'

/**
 * Staff enrol a passkey from a single-use invitation link instead of a token: the link's secret is stored hashed, with
 * its expiry and the moment it was used. A sign-in through the bank's identity provider keeps the ID token's `sub` and
 * `sid`, so that the provider's back-channel logout can find the sessions it ends; the logout tokens' ids are kept
 * until they expire, so that one is not accepted twice.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('staff_invitations')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('staff_id', 'text', (c) => c.notNull())
    .addColumn('secret_hash', 'bytea', (c) => c.notNull().unique())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema.alterTable('staff_sign_ins').addColumn('subject', 'text').addColumn('session_id', 'text').execute()
  await db.schema.createIndex('staff_sign_ins_subject').on('staff_sign_ins').columns(['tenant_id', 'subject']).execute()
  await db.schema
    .createTable('oidc_logout_jtis')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('jti', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('oidc_logout_jtis_pk', ['tenant_id', 'jti'])
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the staff invitations migration cannot be reverted')
}
