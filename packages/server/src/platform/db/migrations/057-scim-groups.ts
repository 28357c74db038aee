import type { Kysely } from 'kysely'

/**
 * SCIM groups from the bank's identity provider (RFC 7643 §4.2) and their members, whose roles follow them; and the
 * moment a staff member was left holding no role (provisioned before any group gave them one, or out of their last
 * role-giving group): no token of theirs works and none is issued until a group gives them a role again.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('staff').addColumn('roleless_at', 'timestamptz').execute()
  await db.schema
    .createTable('scim_groups')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('external_id', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('scim_groups_pkey', ['tenant_id', 'id'])
    .addUniqueConstraint('scim_groups_display_name_key', ['tenant_id', 'display_name'])
    .execute()
  await db.schema
    .createTable('scim_group_members')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('group_id', 'text', (c) => c.notNull())
    .addColumn('staff_id', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('scim_group_members_pkey', ['tenant_id', 'group_id', 'staff_id'])
    .addForeignKeyConstraint('scim_group_members_group_fkey', ['tenant_id', 'group_id'], 'scim_groups', [
      'tenant_id',
      'id',
    ])
    .execute()
  await db.schema
    .createIndex('scim_group_members_staff_idx')
    .on('scim_group_members')
    .columns(['tenant_id', 'staff_id'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('scim_group_members').execute()
  await db.schema.dropTable('scim_groups').execute()
  await db.schema.alterTable('staff').dropColumn('roleless_at').execute()
}
