import { type ArchiveContext, archiveKeysOf } from './append.ts'
import { type ArchiveRecordView, archiveRecordView, openRecords } from './open-records.ts'

const PAGE = 1000

/**
 * Every archive record about a customer, in the order they were appended (linked into the chain or not yet), opened
 * where their content can still be read: what a data subject export shows of the archive. Records deleted after
 * retention or erased by crypto-shredding are listed with that status and no content.
 */
export async function customerArchiveRecords(
  ctx: ArchiveContext,
  tenantId: string,
  customerId: string,
): Promise<ArchiveRecordView[]> {
  const keys = archiveKeysOf(ctx)
  const views: ArchiveRecordView[] = []
  for (let after = 0; ; ) {
    const rows = await ctx.db
      .selectFrom('archive_records')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('customer_id', '=', customerId)
      .where('id', '>', after)
      .orderBy('id')
      .limit(PAGE)
      .execute()
    for (const record of await openRecords(keys, tenantId, rows)) views.push(archiveRecordView(record))
    if (rows.length < PAGE) return views
    after = Number(rows.at(-1)?.id)
  }
}
