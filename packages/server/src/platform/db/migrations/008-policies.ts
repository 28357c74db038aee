import type { Kysely } from 'kysely'

/** Per-tenant policies, as validated JSON documents (the step-up policy first). */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('tenant_policies')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('document', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('tenant_policies_pk', ['tenant_id', 'name'])
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the policies migration cannot be reverted')
}
