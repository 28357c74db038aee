import type { Kysely } from 'kysely'

/**
 * A TOTP factor records when it became active, for the tenant's cooling-off period: a factor added recently does not
 * satisfy a high-value step-up. Factors active before take their creation time.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('totp_factors').addColumn('activated_at', 'timestamptz').execute()
  await (db as Kysely<{ totp_factors: { status: string; activated_at: unknown; created_at: unknown } }>)
    .updateTable('totp_factors')
    .set((eb) => ({ activated_at: eb.ref('created_at') }))
    .where('status', '=', 'active')
    .execute()
}

export async function down(): Promise<void> {
  throw new Error('the factor lifecycle migration cannot be reverted')
}
