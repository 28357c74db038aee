import { retainedRecordClasses } from '@strongroom/sdk/protocol'
import type { Kysely } from 'kysely'
import { type Actor, recordAudit } from '../audit/events.ts'
import { forgetCustomerPublicTexts } from '../channels/message-search.ts'
import { forgetCustomerReports } from '../channels/suspicious-reports.ts'
import { forgetCustomerName } from '../identity/customer-search.ts'
import { requireCustomer } from '../identity/customers.ts'
import type { Database } from '../platform/db/schema.ts'
import { Problem } from '../platform/http/problems.ts'
import { type ArchiveKeys, destroyArchiveKey, keyScope } from './archive-keys.ts'
import { appendMarker, type RetainedClass, retainedUntil, retentionPolicy } from './retention.ts'

/** Whether a customer could be erased now: which legal hold stands in the way, or until when retention does. */
export interface ErasureOutlook {
  /** An active legal hold on the customer or one of their conversations. */
  heldBy: string | null
  /** The end of the latest retention among the customer's readable records, if it is still ahead. */
  retainedUntil: string | null
  /** The customer's archive records whose content is still readable. */
  records: number
}

/**
 * What stands between a customer and their erasure at `now`. In a transaction with `lock`, the hold found is locked,
 * so that nobody releases or places one while the erasure that depends on it commits.
 */
export async function erasureOutlook(
  db: Kysely<Database>,
  tenantId: string,
  customerId: string,
  options: { now?: Date; lock?: boolean } = {},
): Promise<ErasureOutlook> {
  const now = options.now ?? new Date()
  let holds = db
    .selectFrom('archive_holds')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('released_at', 'is', null)
    .where((eb) =>
      eb.or([
        eb.and([eb('scope_kind', '=', 'customer'), eb('scope_id', '=', customerId)]),
        eb.and([
          eb('scope_kind', '=', 'conversation'),
          eb(
            'scope_id',
            'in',
            eb
              .selectFrom('archive_records')
              .select('conversation_id')
              .where('tenant_id', '=', tenantId)
              .where('customer_id', '=', customerId)
              .where('conversation_id', 'is not', null)
              .$narrowType<{ conversation_id: string }>(),
          ),
        ]),
      ]),
    )
  if (options.lock) holds = holds.forUpdate()
  const hold = await holds.executeTakeFirst()

  const policy = await retentionPolicy(db, tenantId)
  const newest = await db
    .selectFrom('archive_records')
    .select(['record_class', ({ fn }) => fn.max('occurred_at').as('newest'), ({ fn }) => fn.countAll().as('n')])
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .where('record_class', 'in', [...retainedRecordClasses])
    .where('deleted_at', 'is', null)
    .groupBy('record_class')
    .execute()
  let until: Date | undefined
  let records = 0
  for (const row of newest) {
    records += Number(row.n)
    const end = retainedUntil(policy, row.record_class as RetainedClass, new Date(row.newest as Date))
    if (end > now && (!until || end > until)) until = end
  }
  return { heldBy: hold?.id ?? null, retainedUntil: until?.toISOString() ?? null, records }
}

/**
 * Which of these customers of the tenant were erased (an erasure record names them): the search backfill leaves them
 * out of the index.
 */
export async function erasedCustomerIds(
  db: Kysely<Database>,
  tenantId: string,
  customerIds: string[],
): Promise<Set<string>> {
  if (customerIds.length === 0) return new Set()
  const rows = await db
    .selectFrom('archive_records')
    .select('customer_id')
    .distinct()
    .where('tenant_id', '=', tenantId)
    .where('record_class', '=', 'erasure')
    .where('customer_id', 'in', customerIds)
    .$narrowType<{ customer_id: string }>()
    .execute()
  return new Set(rows.map((r) => r.customer_id))
}

/**
 * Erases a customer from the archive by crypto-shredding: their archive data key is destroyed, so every record sealed
 * under it (here, in replicas and in backups) can never be read again, while the records and their hashes stay in the
 * chain, which still verifies. Refused while a legal hold covers the customer or one of their conversations, and
 * while any of their records is still within retention (the answer says until when). Recorded in the chain (an
 * erasure record) and the audit log.
 */
export async function eraseCustomer(
  db: Kysely<Database>,
  keys: Pick<ArchiveKeys, 'forget'>,
  tenantId: string,
  customerId: string,
  actor: Actor,
  now = new Date(),
): Promise<{ keyId: string | null; records: number }> {
  const result = await db.transaction().execute(async (trx) => {
    await requireCustomer({ db: trx }, tenantId, customerId, { lock: true })
    const outlook = await erasureOutlook(trx, tenantId, customerId, { now, lock: true })
    if (outlook.heldBy) throw new Problem('archive/legal-hold', `legal hold ${outlook.heldBy} covers this customer`)
    if (outlook.retainedUntil) {
      throw new Problem('archive/retention-active', `erasure is possible from ${outlook.retainedUntil}`)
    }
    const { records } = outlook
    const keyId = (await destroyArchiveKey(trx, tenantId, keyScope(customerId), now)) ?? null
    // The console's search index goes with it (keyed terms of their name and public texts would still find them), and
    // their reports of suspicious messages, sealed under the tenant's key.
    await forgetCustomerName(trx, tenantId, customerId)
    await forgetCustomerPublicTexts(trx, tenantId, customerId)
    await forgetCustomerReports(trx, tenantId, customerId)
    await appendMarker(trx, tenantId, 'erasure', customerId, { reason: 'data-subject-erasure', keyId }, now)
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'archive.erase',
      target: { kind: 'customer', id: customerId },
      outcome: 'success',
      details: { keyId, records },
    })
    return { keyId, records }
  })
  keys.forget(tenantId, keyScope(customerId))
  return result
}
