import type { Kysely } from 'kysely'

/**
 * Production as a bank runs it: a device records its kind (an app that can attest, or a browser that cannot: the
 * secure chat a pivot link opens), so that the tenant's policy can say what each kind may do; and the compliance
 * archive member says where it runs, so that every node can tell an operator when none does.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('devices')
    .addColumn('kind', 'text', (c) => c.notNull().defaultTo('app'))
    .execute()
  await db.schema
    .createTable('archive_member_presence')
    .addColumn('partition', 'text', (c) => c.primaryKey())
    .addColumn('node', 'text', (c) => c.notNull())
    .addColumn('seen_at', 'timestamptz', (c) => c.notNull())
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the production migration cannot be reverted')
}
