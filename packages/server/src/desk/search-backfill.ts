import { erasedCustomerIds } from '../archive/erasure.ts'
import { indexStoredPublicText, publicMessagesAfter } from '../channels/search-backfill.ts'
import { indexCustomerName } from '../identity/customer-search.ts'
import { customerNamesAfter, lockCustomersShared, type RowKey } from '../identity/customers.ts'
import type { ServerContext } from '../platform/context.ts'
import type { Db } from '../platform/db/database.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring'>
type Kind = 'customer-names' | 'public-texts'

/** What one run of the backfill did. */
export interface BackfillOutcome {
  customerNames: number
  publicTexts: number
  /** Customers left out because they were erased (a data-subject erasure), and their messages. */
  skippedErased: number
  batches: number
  /** Whether both kinds are done; false when the run stopped at its batch limit (run it again to resume). */
  complete: boolean
}

const START: RowKey = { tenantId: '', id: '' }

/**
 * Indexes for the console's search what was stored before the index existed: customers' names and public-channel
 * messages (as their text stands now, after DLP masking), a batch at a time, one transaction a batch that also moves
 * the saved position on, so that a run stopped anywhere resumes after the last batch it committed. Erased customers
 * are skipped, their names and their messages: a batch holds its customers' rows shared, so an erasure either
 * commits before the batch looks (and is seen) or waits for it (and then forgets what it indexed). Indexing twice is
 * harmless (the terms are a set). `fromStart` forgets the saved position; `maxBatches` bounds a run (a maintenance
 * window).
 */
export async function backfillSearchIndex(
  ctx: Ctx,
  options: {
    batchSize: number
    fromStart?: boolean
    maxBatches?: number
    onBatch?: (outcome: BackfillOutcome) => void
  },
): Promise<BackfillOutcome> {
  const outcome: BackfillOutcome = { customerNames: 0, publicTexts: 0, skippedErased: 0, batches: 0, complete: false }
  if (options.fromStart) await ctx.db.deleteFrom('search_backfill_progress').execute()
  for (const kind of ['customer-names', 'public-texts'] as const) {
    for (;;) {
      if (outcome.batches === options.maxBatches) return outcome
      const more = await ctx.db.transaction().execute(async (trx) => {
        const progress = await trx
          .selectFrom('search_backfill_progress')
          .selectAll()
          .where('kind', '=', kind)
          .forUpdate()
          .executeTakeFirst()
        if (progress?.completed_at) return false
        const after = progress ? { tenantId: progress.after_tenant_id, id: progress.after_id } : START
        const tx = { db: trx, keyring: ctx.keyring }
        const last =
          kind === 'customer-names'
            ? await customerNamesBatch(tx, after, options.batchSize, outcome)
            : await publicTextsBatch(tx, after, options.batchSize, outcome)
        await saveProgress(trx, kind, last ?? after, last === undefined)
        return last !== undefined
      })
      if (!more) break
      outcome.batches += 1
      options.onBatch?.(outcome)
    }
  }
  outcome.complete = true
  return outcome
}

/** Indexes the names of the next customers who were not erased; the last one looked at, if any. */
async function customerNamesBatch(ctx: Ctx, after: RowKey, limit: number, outcome: BackfillOutcome) {
  const customers = await customerNamesAfter(ctx, after, limit)
  const erased = await erasedAmong(ctx.db, customers)
  for (const customer of customers) {
    if (erased.has(`${customer.tenantId}/${customer.id}`)) {
      outcome.skippedErased += 1
      continue
    }
    await indexCustomerName(ctx, customer.tenantId, customer.id, customer.name)
    outcome.customerNames += 1
  }
  return customers.at(-1)
}

/** Indexes the next public-channel messages but those of erased customers; the last one looked at, if any. */
async function publicTextsBatch(ctx: Ctx, after: RowKey, limit: number, outcome: BackfillOutcome) {
  const messages = await publicMessagesAfter(ctx, after, limit)
  const customers = messages.flatMap((m) => (m.customerId ? [{ tenantId: m.tenantId, id: m.customerId }] : []))
  await lockCustomersShared(ctx, customers)
  const erased = await erasedAmong(ctx.db, customers)
  for (const message of messages) {
    if (message.customerId && erased.has(`${message.tenantId}/${message.customerId}`)) {
      outcome.skippedErased += 1
      continue
    }
    if (await indexStoredPublicText(ctx, message)) outcome.publicTexts += 1
  }
  return messages.at(-1)
}

/** `tenant/customer` of those among these customers who were erased. */
async function erasedAmong(db: Db, customers: RowKey[]): Promise<Set<string>> {
  const byTenant = new Map<string, Set<string>>()
  for (const c of customers) byTenant.set(c.tenantId, (byTenant.get(c.tenantId) ?? new Set()).add(c.id))
  const erased = new Set<string>()
  for (const [tenantId, ids] of byTenant) {
    for (const id of await erasedCustomerIds(db, tenantId, [...ids])) erased.add(`${tenantId}/${id}`)
  }
  return erased
}

async function saveProgress(db: Db, kind: Kind, after: RowKey, completed: boolean): Promise<void> {
  const now = new Date()
  const values = {
    after_tenant_id: after.tenantId,
    after_id: after.id,
    completed_at: completed ? now : null,
    updated_at: now,
  }
  await db
    .insertInto('search_backfill_progress')
    .values({ kind, ...values })
    .onConflict((oc) => oc.column('kind').doUpdateSet(values))
    .execute()
}
