import type { Kysely } from 'kysely'

/**
 * A console token renews its session once: the time it did is kept, so that a second renewal with the same token (a
 * copy of it in someone else's hands, or the console's own after the thief's) is seen and ends the session.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('staff_tokens').addColumn('renewed_at', 'timestamptz').execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('staff_tokens').dropColumn('renewed_at').execute()
}
