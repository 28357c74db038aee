import { type Kysely, sql } from 'kysely'

/**
 * Staff sign in through the bank's OpenID provider. A tenant's provider (issuer, client, how the client
 * authenticates, which claim carries roles) has its client secret or private key sealed by the keyring. A sign-in is
 * one row from the authorization request to sign-out: its state (stored hashed) and nonce, its PKCE verifier (sealed),
 * then the staff member, the single-use handoff code the console exchanges for its first token (hashed), the session's
 * absolute end, and the ID token for RP-initiated logout (sealed). Each staff token issued for it names it, so that a
 * refresh knows which session it continues and a sign-out ends them all.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('staff_oidc_providers')
    .addColumn('tenant_id', 'text', (c) => c.primaryKey().references('tenants.id'))
    .addColumn('issuer', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('auth_method', 'text', (c) =>
      c.notNull().check(sql`auth_method in ('client_secret_basic', 'client_secret_post', 'private_key_jwt')`),
    )
    .addColumn('credential', 'bytea', (c) => c.notNull())
    .addColumn('subject_claim', 'text', (c) => c.notNull())
    .addColumn('role_claim', 'text', (c) => c.notNull())
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('session_seconds', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema
    .createTable('staff_sign_ins')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('state_hash', 'bytea', (c) => c.notNull().unique())
    .addColumn('nonce', 'text', (c) => c.notNull())
    .addColumn('code_verifier', 'bytea', (c) => c.notNull())
    .addColumn('redirect_uri', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('callback_at', 'timestamptz')
    .addColumn('staff_id', 'text')
    .addColumn('handoff_hash', 'bytea', (c) => c.unique())
    .addColumn('handed_off_at', 'timestamptz')
    .addColumn('session_expires_at', 'timestamptz')
    .addColumn('id_token', 'bytea')
    .addColumn('ended_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema.alterTable('staff_tokens').addColumn('sign_in_id', 'text').execute()
}

export async function down(): Promise<void> {
  throw new Error('the staff OpenID Connect migration cannot be reverted')
}
