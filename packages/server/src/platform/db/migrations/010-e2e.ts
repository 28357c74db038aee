import type { Kysely } from 'kysely'

/**
 * The MLS delivery service: one group per secure conversation with its current epoch (commits are ordered by it),
 * the key-package directory, and welcomes waiting for the members a commit added.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('e2e_groups')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('conversation_id', 'text', (c) => c.primaryKey().references('conversations.id'))
    .addColumn('group_id', 'bytea', (c) => c.notNull())
    .addColumn('cipher_suite', 'text', (c) => c.notNull())
    .addColumn('epoch', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('e2e_groups_group_id')
    .on('e2e_groups')
    .columns(['tenant_id', 'group_id'])
    .unique()
    .execute()

  await db.schema
    .createTable('e2e_key_packages')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('owner_kind', 'text', (c) => c.notNull())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('ref', 'text', (c) => c.notNull())
    .addColumn('cipher_suite', 'text', (c) => c.notNull())
    .addColumn('key_package', 'bytea', (c) => c.notNull())
    .addColumn('last_resort', 'boolean', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('claimed_at', 'timestamptz')
    .addColumn('claimed_for', 'text')
    .execute()
  await db.schema
    .createIndex('e2e_key_packages_ref')
    .on('e2e_key_packages')
    .columns(['tenant_id', 'ref'])
    .unique()
    .execute()
  await db.schema
    .createIndex('e2e_key_packages_owner')
    .on('e2e_key_packages')
    .columns(['tenant_id', 'owner_kind', 'owner_id', 'last_resort', 'claimed_at'])
    .execute()

  await db.schema
    .createTable('e2e_welcomes')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('conversation_id', 'text', (c) => c.notNull().references('conversations.id'))
    .addColumn('recipient_kind', 'text', (c) => c.notNull())
    .addColumn('recipient_id', 'text', (c) => c.notNull())
    .addColumn('key_package_ref', 'text', (c) => c.notNull())
    .addColumn('epoch', 'bigint', (c) => c.notNull())
    .addColumn('commit_seq', 'bigint', (c) => c.notNull())
    .addColumn('welcome', 'bytea', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('e2e_welcomes_recipient')
    .on('e2e_welcomes')
    .columns(['tenant_id', 'recipient_kind', 'recipient_id'])
    .execute()

  // The archive member's MLS state (its signature key, group states, reading positions), sealed under its own keys.
  await db.schema
    .createTable('archive_member_state')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('sealed', 'bytea', (c) => c.notNull())
    .addPrimaryKeyConstraint('archive_member_state_pk', ['tenant_id', 'name'])
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the e2e migration cannot be reverted')
}
