import type { Kysely } from 'kysely'

/**
 * Re-joining an MLS group after losing its state: the latest signed GroupInfo of each group (for its current epoch,
 * published with every commit) from which a member re-joins by external commit, and the requests of members that
 * could not, for a member online (the archive) to re-add them.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('e2e_groups').addColumn('group_info', 'bytea').execute()
  await db.schema
    .createTable('e2e_readd_requests')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('conversation_id', 'text', (c) => c.notNull().references('conversations.id'))
    .addColumn('member_kind', 'text', (c) => c.notNull())
    .addColumn('member_id', 'text', (c) => c.notNull())
    .addColumn('requested_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('e2e_readd_requests_pk', ['tenant_id', 'conversation_id', 'member_kind', 'member_id'])
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the e2e re-join migration cannot be reverted')
}
