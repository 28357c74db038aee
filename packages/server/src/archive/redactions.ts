import type { ArchiveContext } from './append.ts'
import type { ArchiveKeys } from './archive-keys.ts'
import { type OpenedRecord, openRecords } from './open-records.ts'

interface Superseding {
  seq: number
  text: string
  masked?: string[]
}

/**
 * The redactions that supersede any of these public-message records: what the archive kept of a message before DLP
 * masked it after the fact (the first part of a card number typed over two messages) is superseded by the redaction
 * record holding the masked text. Keyed by the superseded record's source reference.
 */
async function redactionsFor(
  ctx: Pick<ArchiveContext, 'db'>,
  keys: ArchiveKeys,
  tenantId: string,
  records: readonly OpenedRecord[],
): Promise<Map<string, Superseding>> {
  const conversations = [
    ...new Set(
      records.flatMap(({ row }) =>
        row.record_class === 'public-message' && row.conversation_id ? [row.conversation_id] : [],
      ),
    ),
  ]
  const found = new Map<string, Superseding>()
  if (conversations.length === 0) return found
  const rows = await ctx.db
    .selectFrom('archive_records')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('record_class', '=', 'redaction')
    .where('conversation_id', 'in', conversations)
    .where('content_hash', 'is not', null)
    .orderBy('id')
    .execute()
  for (const { row, content } of await openRecords(keys, tenantId, rows)) {
    const supersedes = (content?.supersedes ?? []) as { sourceRef: string; text: string; masked?: string[] }[]
    for (const { sourceRef, text, masked } of supersedes) {
      found.set(sourceRef, { seq: Number(row.seq ?? 0), text, ...(masked ? { masked } : {}) })
    }
  }
  return found
}

/**
 * Public-message records with the redactions that supersede them applied, each then reading as `redacted`: as search
 * shows them (`show: 'masked'`), with the masked text and the redaction's chain position (`redactedBy`) in place of
 * what was first kept; as an export carries them (`show: 'withheld'`), without content (its content digest still
 * chains it), the redaction record in the same export holding the masked text.
 */
export async function withRedactions(
  ctx: Pick<ArchiveContext, 'db'>,
  keys: ArchiveKeys,
  tenantId: string,
  records: OpenedRecord[],
  show: 'masked' | 'withheld',
): Promise<OpenedRecord[]> {
  const redactions = await redactionsFor(ctx, keys, tenantId, records)
  if (redactions.size === 0) return records
  return records.map((record) => {
    const redaction = record.content ? redactions.get(record.row.source_ref) : undefined
    if (!redaction || record.row.record_class !== 'public-message') return record
    if (show === 'withheld') return { ...record, status: 'redacted', content: null }
    const { seq, ...masked } = redaction
    return { ...record, status: 'redacted', content: { ...record.content, ...masked, redactedBy: seq } }
  })
}
