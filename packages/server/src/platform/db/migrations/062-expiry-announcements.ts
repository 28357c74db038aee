import { type Kysely, sql } from 'kysely'

/**
 * When a payment request left unanswered, or a pivot link left unused, was said to have expired on the streams: the
 * housekeeping sweep that says it marks each once, whichever node gets there first. What had already expired before
 * this migration counts as said (nobody is watching it now), and a partial index keeps the sweep to what is still due.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table consents add column expiry_announced_at timestamptz`.execute(db)
  await sql`alter table pivot_links add column expiry_announced_at timestamptz`.execute(db)
  await sql`update consents set expiry_announced_at = expires_at where status = 'pending' and expires_at <= now()`.execute(
    db,
  )
  await sql`update pivot_links set expiry_announced_at = expires_at
    where completed_at is null and revoked_at is null and expires_at <= now()`.execute(db)
  await sql`create index consents_expiry_due_idx on consents (expires_at)
    where status = 'pending' and expiry_announced_at is null`.execute(db)
  await sql`create index pivot_links_expiry_due_idx on pivot_links (expires_at)
    where completed_at is null and revoked_at is null and expiry_announced_at is null`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index pivot_links_expiry_due_idx`.execute(db)
  await sql`drop index consents_expiry_due_idx`.execute(db)
  await sql`alter table pivot_links drop column expiry_announced_at`.execute(db)
  await sql`alter table consents drop column expiry_announced_at`.execute(db)
}
