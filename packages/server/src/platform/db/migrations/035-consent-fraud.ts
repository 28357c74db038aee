import { type Kysely, sql } from 'kysely'

/**
 * A declined payment the customer reported as not theirs ("This wasn't me"): when, and, if they asked for the payee to
 * be blocked, the payee account's blind index, so that further requests to that account for that customer are refused.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table consents add column fraud_reported_at timestamptz`.execute(db)
  await sql`alter table consents add column blocked_payee_index bytea`.execute(db)
  await sql`create index consents_blocked_payee on consents (tenant_id, customer_id, blocked_payee_index)
    where blocked_payee_index is not null`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index consents_blocked_payee`.execute(db)
  await sql`alter table consents drop column blocked_payee_index`.execute(db)
  await sql`alter table consents drop column fraud_reported_at`.execute(db)
}
