import { ARCHIVE_SEARCH_SCAN_LIMIT } from '@strongroom/sdk/protocol'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ArchiveRecordClass } from '../platform/db/schema.ts'
import { Problem } from '../platform/http/problems.ts'
import { type ArchiveContext, archiveKeysOf } from './append.ts'
import { type OpenedRecord, openRecords } from './open-records.ts'
import { withRedactions } from './redactions.ts'

export interface ArchiveQuery {
  customerId?: string | undefined
  conversationId?: string | undefined
  recordClass?: ArchiveRecordClass | undefined
  from?: Date | undefined
  to?: Date | undefined
  /** Matched case-insensitively against the decrypted text of each candidate. */
  text?: string | undefined
  /** Continue after this chain sequence number (the `next` of the previous page). */
  after?: number | undefined
  limit?: number | undefined
}

const fold = (text: string) => text.normalize('NFKC').toLocaleLowerCase('en')

/**
 * Searches a tenant's archive for compliance staff: by customer, conversation and time range on the clear metadata,
 * then by text over the decrypted candidates. Audited (what was searched for, never the text itself).
 *
 * One request decrypts at most ARCHIVE_SEARCH_SCAN_LIMIT candidates. Text cannot be indexed without storing it (or a
 * guessable index of it) beside the archive, so text search decrypts the candidates the other filters leave, a page
 * at a time: narrow by customer, conversation or time for big archives, and follow `next` for more.
 */
export async function searchArchive(
  ctx: ArchiveContext,
  tenantId: string,
  query: ArchiveQuery,
  actor: Actor,
): Promise<{ records: OpenedRecord[]; next: number | null; scanned: number }> {
  if (query.from && query.to && query.from > query.to) throw new Problem('archive/invalid-range')
  const limit = Math.min(query.limit ?? 50, ARCHIVE_SEARCH_SCAN_LIMIT)
  const scan = query.text ? ARCHIVE_SEARCH_SCAN_LIMIT : limit
  let select = ctx.db
    .selectFrom('archive_records')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('seq', '>', query.after ?? 0)
    .where('content_hash', 'is not', null)
  if (query.customerId) select = select.where('customer_id', '=', query.customerId)
  if (query.conversationId) select = select.where('conversation_id', '=', query.conversationId)
  if (query.recordClass) select = select.where('record_class', '=', query.recordClass)
  if (query.from) select = select.where('occurred_at', '>=', query.from)
  if (query.to) select = select.where('occurred_at', '<', query.to)
  const candidates = await select.orderBy('seq').limit(scan).execute()
  const keys = archiveKeysOf(ctx)
  const opened = await withRedactions(ctx, keys, tenantId, await openRecords(keys, tenantId, candidates), 'masked')
  const needle = query.text ? fold(query.text) : undefined
  const records: OpenedRecord[] = []
  let last: number | null = null
  for (const record of opened) {
    if (records.length === limit) break
    last = Number(record.row.seq)
    if (needle && !(typeof record.content?.text === 'string' && fold(record.content.text).includes(needle))) continue
    records.push(record)
  }
  const more = candidates.length === scan || (last !== null && last !== Number(candidates.at(-1)?.seq))
  const next = more ? last : null
  await recordAudit(ctx.db, {
    tenantId,
    actor,
    action: 'archive.search',
    outcome: 'success',
    details: {
      customerId: query.customerId ?? null,
      conversationId: query.conversationId ?? null,
      recordClass: query.recordClass ?? null,
      from: query.from?.toISOString() ?? null,
      to: query.to?.toISOString() ?? null,
      text: Boolean(query.text),
      results: records.length,
    },
  })
  return { records, next, scanned: candidates.length }
}
