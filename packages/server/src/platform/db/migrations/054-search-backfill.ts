import { type Kysely, sql } from 'kysely'

/**
 * Where `strongroom search backfill` stands: for each kind of text it indexes (customers' names, public-channel
 * messages), the last row it indexed, so that a run stopped half-way resumes after it, and when it finished.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('search_backfill_progress')
    .addColumn('kind', 'text', (c) => c.primaryKey().check(sql`kind in ('customer-names', 'public-texts')`))
    .addColumn('after_tenant_id', 'text', (c) => c.notNull())
    .addColumn('after_id', 'text', (c) => c.notNull())
    .addColumn('completed_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the search backfill migration cannot be reverted')
}
