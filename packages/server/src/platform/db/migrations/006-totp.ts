import { type Kysely, sql } from 'kysely'

/** TOTP (RFC 6238) factors of customers: the secret encrypted, the last used time step remembered against replay. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('totp_factors')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('customer_id', 'text', (c) => c.notNull().references('customers.id'))
    .addColumn('secret', 'bytea', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('pending', 'active')`))
    .addColumn('last_used_step', 'bigint', (c) => c.notNull().defaultTo(-1))
    .addColumn('failed_attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('locked_until', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addUniqueConstraint('totp_factors_customer_status_uq', ['tenant_id', 'customer_id', 'status'])
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the totp migration cannot be reverted')
}
