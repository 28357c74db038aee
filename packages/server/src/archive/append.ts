import type { ServerContext } from '../platform/context.ts'
import type { ArchiveRecordClass } from '../platform/db/schema.ts'
import { Problem } from '../platform/http/problems.ts'
import { ArchiveKeys, keyScope } from './archive-keys.ts'
import { type ArchiveContent, sealContent } from './sealing.ts'

/** What a capability hands the archive: one message or event of a conversation, with its content in clear. */
export interface ArchiveInput {
  tenantId: string
  recordClass: Exclude<ArchiveRecordClass, 'deletion' | 'erasure'>
  /** Unique within the tenant for this record (`mls:<conversation>:<seq>`, `channel:<message id>`): a replay is a no-op. */
  sourceRef: string
  conversationId: string | null
  conversationSeq: number | null
  customerId: string | null
  occurredAt: Date
  content: ArchiveContent
}

export type ArchiveContext = Pick<ServerContext, 'db' | 'archiveKek'>

const keyrings = new WeakMap<object, ArchiveKeys>()

/** The archive keys of this node, or a 503 when it was not given the archive's key-encryption key. */
export function archiveKeysOf(ctx: ArchiveContext): ArchiveKeys {
  if (!ctx.archiveKek) throw new Problem('archive/unavailable', 'this node has no archive key file')
  let keys = keyrings.get(ctx.archiveKek)
  if (!keys) {
    keys = new ArchiveKeys(ctx.db, ctx.archiveKek)
    keyrings.set(ctx.archiveKek, keys)
  }
  return keys
}

/**
 * Appends records to the archive, their content sealed under the customer's archive key, in one statement; the
 * archive chainer links them into the tenant's chain moments later. Idempotent on (tenant, source reference): the
 * archive member replays after a crash, a connector retries. Returns how many were new.
 */
export async function archiveRecords(ctx: ArchiveContext, inputs: ArchiveInput[]): Promise<number> {
  if (inputs.length === 0) return 0
  const keys = archiveKeysOf(ctx)
  const rows = []
  for (const input of inputs) {
    const key = await keys.sealingKey(input.tenantId, keyScope(input.customerId))
    rows.push({
      tenant_id: input.tenantId,
      record_class: input.recordClass,
      source_ref: input.sourceRef,
      conversation_id: input.conversationId,
      conversation_seq: input.conversationSeq,
      customer_id: input.customerId,
      occurred_at: input.occurredAt,
      details: '{}',
      ...sealContent(key, input.tenantId, input.sourceRef, input.content),
    })
  }
  const inserted = await ctx.db
    .insertInto('archive_records')
    .values(rows)
    .onConflict((oc) => oc.columns(['tenant_id', 'source_ref']).doNothing())
    .returning('id')
    .execute()
  return inserted.length
}

/** Appends one record (a public-channel message, say); see archiveRecords. */
export async function archiveRecord(ctx: ArchiveContext, input: ArchiveInput): Promise<boolean> {
  return (await archiveRecords(ctx, [input])) === 1
}

/**
 * The highest sequence number of a conversation that the archive holds a record of in this class (0 for none): where
 * a reader that was away resumes.
 */
export async function archivedThroughSeq(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  conversationId: string,
  recordClass: ArchiveInput['recordClass'],
): Promise<number> {
  const row = await ctx.db
    .selectFrom('archive_records')
    .select((eb) => eb.fn.max('conversation_seq').as('seq'))
    .where('tenant_id', '=', tenantId)
    .where('conversation_id', '=', conversationId)
    .where('record_class', '=', recordClass)
    .executeTakeFirst()
  return Number(row?.seq ?? 0)
}
