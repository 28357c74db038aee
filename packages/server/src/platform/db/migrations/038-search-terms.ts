import type { Kysely } from 'kysely'

/**
 * What the console searches without keeping text in clear: the words of customers' names and of public-channel
 * messages as keyed blind indexes (HMAC with the tenant's index key, one row a word), found by equality. Secure
 * (end-to-end encrypted) messages are never indexed: the server cannot read them.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('customer_name_terms')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('term', 'bytea', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull().references('customers.id'))
    .addPrimaryKeyConstraint('customer_name_terms_pk', ['tenant_id', 'term', 'customer_id'])
    .execute()
  await db.schema
    .createTable('channel_message_terms')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('term', 'bytea', (c) => c.notNull())
    .addColumn('conversation_id', 'text', (c) => c.notNull().references('conversations.id'))
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('channel_message_terms_pk', ['tenant_id', 'term', 'conversation_id', 'seq'])
    .execute()
  await db.schema
    .createIndex('channel_message_terms_message_idx')
    .on('channel_message_terms')
    .columns(['tenant_id', 'conversation_id', 'seq'])
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the search terms migration cannot be reverted')
}
