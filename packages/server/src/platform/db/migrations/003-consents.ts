import { type Kysely, sql } from 'kysely'

/**
 * Transaction consents. Amount and currency are kept in clear (policies and reports need them); the payee and the
 * reference are one encrypted column, and so is the signed receipt, which repeats them.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('consents')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('customer_id', 'text', (c) => c.notNull().references('customers.id'))
    .addColumn('conversation_id', 'text', (c) => c.references('conversations.id'))
    .addColumn('amount_minor', 'bigint', (c) => c.notNull().check(sql`amount_minor > 0`))
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('details', 'bytea', (c) => c.notNull())
    .addColumn('challenge', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('pending', 'approved', 'declined')`))
    .addColumn('requested_by_kind', 'text', (c) => c.notNull())
    .addColumn('requested_by_id', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('decided_at', 'timestamptz')
    .addColumn('device_id', 'text')
    .addColumn('factor', 'text')
    .addColumn('decline_reason', 'text')
    .addColumn('receipt', 'bytea')
    .execute()
  await db.schema.createIndex('consents_customer_idx').on('consents').columns(['tenant_id', 'customer_id']).execute()
}

export async function down(): Promise<void> {
  throw new Error('the consents migration cannot be reverted')
}
