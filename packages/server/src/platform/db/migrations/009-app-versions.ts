import type { Kysely } from 'kysely'

/** App versions a bank has switched off: their integrity tokens stop working and they can attest no more. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('deactivated_app_versions')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('app_id', 'text', (c) => c.notNull())
    .addColumn('app_version', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('deactivated_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('deactivated_app_versions_pk', ['tenant_id', 'app_id', 'app_version'])
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the app versions migration cannot be reverted')
}
