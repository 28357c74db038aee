import { type Kysely, sql } from 'kysely'

/**
 * A payee block ("This wasn't me" with the payee blocked) lifted by a supervisor or an administrator: when and by whom.
 * The block's index stays as evidence; a lifted block no longer refuses requests. The reason is in the audit log.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table consents add column payee_block_lifted_at timestamptz`.execute(db)
  await sql`alter table consents add column payee_block_lifted_by text`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table consents drop column payee_block_lifted_by`.execute(db)
  await sql`alter table consents drop column payee_block_lifted_at`.execute(db)
}
