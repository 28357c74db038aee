import { type Kysely, sql } from 'kysely'

/**
 * Key packages carry the end of their lifetime: the directory hands out none that has expired, counts none in an
 * owner's stock, and drops an owner's expired ones when it uploads more. Packages stored before this migration were
 * all made by the SDK with a 90-day lifetime from their upload.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('e2e_key_packages').addColumn('expires_at', 'timestamptz').execute()
  await sql`update e2e_key_packages set expires_at = created_at + interval '90 days'`.execute(db)
  await db.schema
    .alterTable('e2e_key_packages')
    .alterColumn('expires_at', (c) => c.setNotNull())
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the key package lifetime migration cannot be reverted')
}
