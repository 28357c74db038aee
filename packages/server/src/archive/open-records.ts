import type { Selectable } from 'kysely'
import type { ArchiveRecordsTable } from '../platform/db/schema.ts'
import type { ArchiveKeys } from './archive-keys.ts'
import { type ArchiveContent, openContent } from './sealing.ts'

export type ArchiveRow = Selectable<ArchiveRecordsTable>

/**
 * Whether a record's content can be read: kept, deleted after retention, erased with its customer's key, or superseded
 * by a redaction (a public message masked after the fact: the masked text is shown instead).
 */
export type ContentStatus = 'available' | 'deleted' | 'erased' | 'redacted' | 'none'

export interface OpenedRecord {
  row: ArchiveRow
  status: ContentStatus
  content: ArchiveContent | null
}

/**
 * Opens the content of a page of records with the archive's keys (read fresh, so an erasure is honoured at once). A
 * record whose key was destroyed reads as erased; one whose sealed bytes fail to open throws (that is tampering, and
 * `strongroom archive verify` names it).
 */
export async function openRecords(keys: ArchiveKeys, tenantId: string, rows: ArchiveRow[]): Promise<OpenedRecord[]> {
  const opening = await keys.openingKeys(
    tenantId,
    rows.flatMap((r) => (r.key_id && r.sealed ? [r.key_id] : [])),
  )
  return rows.map((row) => {
    if (row.content_hash === null) return { row, status: 'none', content: null }
    if (row.sealed === null || row.key_id === null) return { row, status: 'deleted', content: null }
    const key = opening.get(row.key_id)
    if (!key) return { row, status: 'erased', content: null }
    return { row, status: 'available', content: openContent(key, tenantId, row.key_id, row.source_ref, row.sealed) }
  })
}

/** A record as compliance staff read it: its place in the chain, its class and its content if still readable. */
export function archiveRecordView({ row, status, content }: OpenedRecord) {
  return {
    seq: row.seq === null ? null : Number(row.seq),
    recordClass: row.record_class,
    conversationId: row.conversation_id,
    conversationSeq: row.conversation_seq === null ? null : Number(row.conversation_seq),
    customerId: row.customer_id,
    occurredAt: new Date(row.occurred_at).toISOString(),
    status,
    content,
    hash: row.hash === null ? null : Buffer.from(row.hash).toString('hex'),
  }
}

export type ArchiveRecordView = ReturnType<typeof archiveRecordView>
