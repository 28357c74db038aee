import type { Kysely } from 'kysely'

/**
 * Staff presence: the console connections each node holds per staff member (refreshed while open, gone when the last
 * closes or when the node stops refreshing them), and each staff member's own "Away" choice.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('staff_connections')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('staff_id', 'text', (c) => c.notNull())
    .addColumn('node_id', 'text', (c) => c.notNull())
    .addColumn('seen_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('staff_connections_pkey', ['tenant_id', 'staff_id', 'node_id'])
    .execute()
  await db.schema
    .createTable('staff_away')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('staff_id', 'text', (c) => c.notNull())
    .addColumn('since', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('staff_away_pkey', ['tenant_id', 'staff_id'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('staff_away').execute()
  await db.schema.dropTable('staff_connections').execute()
}
