import { type Kysely, sql } from 'kysely'

/**
 * The foundation tables. Every tenant-owned table carries tenant_id; primary keys are random text ids, so rows of two
 * tenants never collide and an id guessed across tenants finds nothing once the query is scoped.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('tenants')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()

  await db.schema
    .createTable('tenant_keys')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('purpose', 'text', (c) => c.notNull().check(sql`purpose in ('data', 'index')`))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('kek_id', 'text', (c) => c.notNull())
    .addColumn('wrapped_key', 'bytea', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('tenant_keys_pk', ['tenant_id', 'purpose', 'version'])
    .execute()

  await db.schema
    .createTable('staff')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('agent', 'supervisor', 'compliance', 'admin')`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('staff_tenant_name_uq', ['tenant_id', 'name'])
    .execute()

  await db.schema
    .createTable('staff_tokens')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('staff_id', 'text', (c) => c.notNull().references('staff.id'))
    .addColumn('token_hash', 'bytea', (c) => c.notNull().unique())
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('revoked_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()

  await db.schema
    .createTable('customers')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('external_ref_index', 'bytea', (c) => c.notNull())
    .addColumn('external_ref', 'bytea', (c) => c.notNull())
    .addColumn('display_name', 'bytea', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('customers_external_ref_uq', ['tenant_id', 'external_ref_index'])
    .execute()

  await db.schema
    .createTable('enrolment_codes')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('customer_id', 'text', (c) => c.notNull().references('customers.id'))
    .addColumn('code_hash', 'bytea', (c) => c.notNull().unique())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .addColumn('device_id', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()

  await db.schema
    .createTable('devices')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('customer_id', 'text', (c) => c.notNull().references('customers.id'))
    .addColumn('jkt', 'text', (c) => c.notNull().unique())
    .addColumn('public_jwk', 'text', (c) => c.notNull())
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('active', 'suspended', 'revoked')`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
  await db.schema.createIndex('devices_customer_idx').on('devices').columns(['tenant_id', 'customer_id']).execute()

  await db.schema
    .createTable('access_tokens')
    .addColumn('token_hash', 'bytea', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id'))
    .addColumn('jkt', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
  await db.schema.createIndex('access_tokens_expiry_idx').on('access_tokens').column('expires_at').execute()

  await db.schema
    .createTable('dpop_proofs')
    .addColumn('jkt', 'text', (c) => c.notNull())
    .addColumn('jti', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('dpop_proofs_pk', ['jkt', 'jti'])
    .execute()
  await db.schema.createIndex('dpop_proofs_expiry_idx').on('dpop_proofs').column('expires_at').execute()

  await db.schema
    .createTable('conversations')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('customer_id', 'text', (c) => c.notNull().references('customers.id'))
    .addColumn('assigned_staff_id', 'text', (c) => c.references('staff.id'))
    .addColumn('last_seq', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
  await db.schema
    .createIndex('conversations_customer_idx')
    .on('conversations')
    .columns(['tenant_id', 'customer_id'])
    .execute()

  await db.schema
    .createTable('conversation_members')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('conversation_id', 'text', (c) => c.notNull().references('conversations.id'))
    .addColumn('member_kind', 'text', (c) => c.notNull().check(sql`member_kind in ('device', 'staff')`))
    .addColumn('member_id', 'text', (c) => c.notNull())
    .addColumn('delivered_seq', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('read_seq', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('joined_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('conversation_members_pk', ['conversation_id', 'member_kind', 'member_id'])
    .execute()
  await db.schema
    .createIndex('conversation_members_member_idx')
    .on('conversation_members')
    .columns(['tenant_id', 'member_kind', 'member_id'])
    .execute()

  await db.schema
    .createTable('messages')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('conversation_id', 'text', (c) => c.notNull().references('conversations.id'))
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('sender_kind', 'text', (c) => c.notNull())
    .addColumn('sender_id', 'text', (c) => c.notNull())
    .addColumn('client_message_id', 'text', (c) => c.notNull())
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addColumn('ciphertext', 'bytea', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz')
    .addPrimaryKeyConstraint('messages_pk', ['conversation_id', 'seq'])
    .addUniqueConstraint('messages_idempotency_uq', [
      'conversation_id',
      'sender_kind',
      'sender_id',
      'client_message_id',
    ])
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the foundation migration cannot be reverted')
}
