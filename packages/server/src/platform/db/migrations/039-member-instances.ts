import { type Kysely, sql } from 'kysely'

/**
 * A staff member's browsers are leaves of their own in a conversation's MLS group: the key-package directory, the
 * welcomes and the re-add requests name the instance (`''` for a device or the archive, one leaf each), so one
 * browser's key packages, welcome or request never stands for another's.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const [table, column] of [
    ['e2e_key_packages', 'owner_instance'],
    ['e2e_welcomes', 'recipient_instance'],
    ['e2e_readd_requests', 'member_instance'],
  ] as const) {
    await db.schema
      .alterTable(table)
      .addColumn(column, 'text', (c) => c.notNull().defaultTo(''))
      .execute()
  }
  await sql`alter table e2e_readd_requests drop constraint e2e_readd_requests_pk`.execute(db)
  await db.schema
    .alterTable('e2e_readd_requests')
    .addPrimaryKeyConstraint('e2e_readd_requests_pk', [
      'tenant_id',
      'conversation_id',
      'member_kind',
      'member_id',
      'member_instance',
    ])
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the member instances migration cannot be reverted')
}
