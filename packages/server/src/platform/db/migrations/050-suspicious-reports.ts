import { type Kysely, sql } from 'kysely'

/**
 * Customers' reports of suspicious messages (a text forwarded to the bank's number after REPORT, or one reported from
 * the secure chat), queued for staff with the smishing analysis: the reported text and the links' hosts sealed with
 * the tenant data key, the risk flags in clear (kinds only) so that the queue can be read without opening them.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('suspicious_reports')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('source', 'text', (c) => c.notNull().check(sql`source in ('sms', 'secure-chat')`))
    .addColumn('conversation_id', 'text', (c) => c.references('conversations.id'))
    .addColumn('customer_id', 'text', (c) => c.references('customers.id'))
    .addColumn('sealed', 'bytea', (c) => c.notNull())
    .addColumn('flags', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('open', 'resolved')`))
    .addColumn('outcome', 'text', (c) => c.check(sql`outcome in ('smishing', 'genuine', 'unclear')`))
    .addColumn('resolved_by', 'text')
    .addColumn('resolved_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('suspicious_reports_queue_idx')
    .on('suspicious_reports')
    .columns(['tenant_id', 'status', 'created_at'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('suspicious_reports').execute()
}
