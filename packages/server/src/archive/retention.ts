import { retainedRecordClasses } from '@strongroom/sdk/protocol'
import type { Kysely } from 'kysely'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ArchiveRecordClass, Database } from '../platform/db/schema.ts'
import { newId } from '../platform/ids.ts'

/**
 * A record class that holds content and so expires (the SDK's `retainedRecordClasses`); a redaction expires with the
 * class it redacts (below).
 */
export type RetainedClass = (typeof retainedRecordClasses)[number] & ArchiveRecordClass

/**
 * A redaction (the masked text of public messages DLP masked after the fact) is no class of its own: it is kept as long
 * as the public messages it redacts and expires with them, never before any of them, since a public message still held
 * after its redaction went would read unmasked again.
 */
const REDACTED_CLASS = 'public-message' satisfies RetainedClass

/** Ten years unless the tenant says otherwise: the longest common record-keeping duty for banks. */
export const DEFAULT_RETENTION_DAYS = 3650
const DAY_MS = 86_400_000

export type RetentionPolicy = Record<RetainedClass, number>

/** The tenant's retention in days per record class, defaults filled in. */
export async function retentionPolicy(db: Kysely<Database>, tenantId: string): Promise<RetentionPolicy> {
  const rows = await db
    .selectFrom('archive_retention')
    .select(['record_class', 'retention_days'])
    .where('tenant_id', '=', tenantId)
    .execute()
  const policy = Object.fromEntries(retainedRecordClasses.map((c) => [c, DEFAULT_RETENTION_DAYS])) as RetentionPolicy
  for (const row of rows) {
    if ((retainedRecordClasses as readonly string[]).includes(row.record_class)) {
      policy[row.record_class as RetainedClass] = row.retention_days
    }
  }
  return policy
}

/** Sets retention for some classes (others keep theirs), audited with the old and new values. */
export async function setRetentionPolicy(
  db: Kysely<Database>,
  tenantId: string,
  changes: Partial<RetentionPolicy>,
  actor: Actor,
): Promise<RetentionPolicy> {
  return db.transaction().execute(async (trx) => {
    const before = await retentionPolicy(trx, tenantId)
    for (const [recordClass, days] of Object.entries(changes)) {
      const row = { retention_days: days, updated_at: new Date(), updated_by: `${actor.kind}:${actor.id ?? ''}` }
      await trx
        .insertInto('archive_retention')
        .values({ tenant_id: tenantId, record_class: recordClass, ...row })
        .onConflict((oc) => oc.columns(['tenant_id', 'record_class']).doUpdateSet(row))
        .execute()
    }
    const after = await retentionPolicy(trx, tenantId)
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'archive.retention.set',
      outcome: 'success',
      details: Object.fromEntries(retainedRecordClasses.map((c) => [c, `${before[c]} -> ${after[c]}`])),
    })
    return after
  })
}

/** When records of a class that occurred at `occurredAt` may be deleted. */
export function retainedUntil(policy: RetentionPolicy, recordClass: RetainedClass, occurredAt: Date): Date {
  return new Date(occurredAt.getTime() + policy[recordClass] * DAY_MS)
}

/**
 * Deletes the content of records past retention and under no legal hold, in batches of `batch` records, each batch
 * one transaction that also appends a deletion record naming the deleted sequence numbers (so the chain still
 * verifies, and shows what went and when) and an audit event. At most `maxBatches` per tenant per call: a large
 * backlog is worked off over several runs without holding the database. Returns how many records were deleted.
 */
export async function expireArchiveRecords(
  db: Kysely<Database>,
  options: { batch: number; maxBatches?: number; now?: Date },
): Promise<number> {
  const now = options.now ?? new Date()
  const tenants = await db.selectFrom('archive_chains').select('tenant_id').execute()
  let deleted = 0
  for (const { tenant_id: tenantId } of tenants) {
    const policy = await retentionPolicy(db, tenantId)
    for (let i = 0; i < (options.maxBatches ?? 10); i++) {
      const count = await expireBatch(db, tenantId, policy, now, options.batch)
      deleted += count
      // Until a batch finds nothing: the redactions of the public messages a batch deleted are due in the next.
      if (count === 0) break
    }
  }
  return deleted
}

async function expireBatch(
  db: Kysely<Database>,
  tenantId: string,
  policy: RetentionPolicy,
  now: Date,
  batch: number,
): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const due = await trx
      .selectFrom('archive_records as r')
      .select(['r.id', 'r.seq'])
      .where('r.tenant_id', '=', tenantId)
      .where('r.seq', 'is not', null)
      .where('r.deleted_at', 'is', null)
      .where('r.content_hash', 'is not', null)
      .where((eb) =>
        eb.or([
          ...retainedRecordClasses.map((c) =>
            eb.and([
              eb('r.record_class', '=', c),
              eb('r.occurred_at', '<', new Date(now.getTime() - policy[c] * DAY_MS)),
            ]),
          ),
          eb.and([
            eb('r.record_class', '=', 'redaction'),
            eb('r.occurred_at', '<', new Date(now.getTime() - policy[REDACTED_CLASS] * DAY_MS)),
            // What it redacts was archived before it, in its conversation: all of that has gone first.
            eb.not(
              eb.exists(
                eb
                  .selectFrom('archive_records as p')
                  .select('p.id')
                  .whereRef('p.tenant_id', '=', 'r.tenant_id')
                  .whereRef('p.conversation_id', '=', 'r.conversation_id')
                  .where('p.record_class', '=', REDACTED_CLASS)
                  .whereRef('p.seq', '<', 'r.seq')
                  .where('p.sealed', 'is not', null),
              ),
            ),
          ]),
        ]),
      )
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('archive_holds as h')
              .select('h.id')
              .whereRef('h.tenant_id', '=', 'r.tenant_id')
              .where('h.released_at', 'is', null)
              .where((eb) =>
                eb.or([
                  eb.and([eb('h.scope_kind', '=', 'customer'), eb('h.scope_id', '=', eb.ref('r.customer_id'))]),
                  eb.and([eb('h.scope_kind', '=', 'conversation'), eb('h.scope_id', '=', eb.ref('r.conversation_id'))]),
                ]),
              ),
          ),
        ),
      )
      .orderBy('r.seq')
      .limit(batch)
      .forUpdate()
      .skipLocked()
      .execute()
    if (due.length === 0) return 0
    await trx
      .updateTable('archive_records')
      .set({ sealed: null, deleted_at: now })
      .where('tenant_id', '=', tenantId)
      .where(
        'id',
        'in',
        due.map((r) => r.id),
      )
      .execute()
    const seqs = due.map((r) => Number(r.seq))
    await appendMarker(trx, tenantId, 'deletion', null, { reason: 'retention', deleted: seqs }, now)
    await recordAudit(trx, {
      tenantId,
      actor: { kind: 'system', id: null },
      action: 'archive.expire',
      outcome: 'success',
      details: { records: seqs.length, fromSeq: seqs[0] ?? null, toSeq: seqs.at(-1) ?? null },
    })
    return due.length
  })
}

/** A deletion or erasure record: clear metadata only, linked into the chain like any other record. */
export async function appendMarker(
  trx: Kysely<Database>,
  tenantId: string,
  recordClass: 'deletion' | 'erasure',
  customerId: string | null,
  details: Record<string, unknown>,
  at: Date,
): Promise<void> {
  await trx
    .insertInto('archive_records')
    .values({
      tenant_id: tenantId,
      record_class: recordClass,
      source_ref: `${recordClass}:${newId('arm')}`,
      conversation_id: null,
      conversation_seq: null,
      customer_id: customerId,
      occurred_at: at,
      key_id: null,
      sealed: null,
      content_hash: null,
      content_digest: null,
      details: JSON.stringify(details),
    })
    .execute()
}
