import { type Kysely, sql } from 'kysely'

/** Bank backends as OAuth 2.0 clients authenticating with private_key_jwt (RFC 7523). */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('api_clients')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('jwks', 'text', (c) => c.notNull())
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('revoked_at', 'timestamptz')
    .execute()

  await db.schema
    .createTable('client_assertion_jtis')
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('jti', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('client_assertion_jtis_pk', ['client_id', 'jti'])
    .execute()

  await db.schema
    .createTable('client_tokens')
    .addColumn('token_hash', 'bytea', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('client_id', 'text', (c) => c.notNull().references('api_clients.id'))
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the api clients migration cannot be reverted')
}
