import { type Kysely, sql } from 'kysely'

/**
 * Signed checkpoints are also written to a witness outside PostgreSQL; `witnessed_at` says which have been, so a
 * witness that was down gets every one it missed. Checkpoints from before wait for the first witness configured.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const table of ['audit_checkpoints', 'archive_checkpoints']) {
    await db.schema.alterTable(table).addColumn('witnessed_at', 'timestamptz').execute()
    await sql`create index ${sql.id(`${table}_unwitnessed`)} on ${sql.table(table)} (tenant_id, tree_size)
      where witnessed_at is null`.execute(db)
  }
}

export async function down(): Promise<void> {
  throw new Error('the checkpoint witness migration cannot be reverted')
}
