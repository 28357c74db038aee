import { sql } from 'kysely'
import type { ServerContext } from '../platform/context.ts'

/** One statement deletes at most this many messages, so that the job never holds long locks. */
export const MESSAGE_EXPIRY_BATCH = 1000

export interface MessageRef {
  tenantId: string
  conversationId: string
  seq: string
}

/**
 * Deletes the ciphertext of expired messages kept for devices, in bounded batches, and only those the compliance
 * archive already holds (`isArchived` answers with `tenant/conversation/seq` keys): an expired message the archive
 * has not read yet stays until it has, so retention on devices never loses a record the bank must keep. Returns how
 * many were deleted. Runs on every node's housekeeping; two nodes deleting the same rows is harmless.
 */
export async function purgeExpiredMessages(
  ctx: Pick<ServerContext, 'db'>,
  options: {
    isArchived: (refs: MessageRef[]) => Promise<Set<string>>
    /** Told which messages went, to forget what else was kept of them (their search terms). */
    purged?: (refs: MessageRef[]) => Promise<void>
    batch?: number
    maxBatches?: number
    now?: Date
  },
): Promise<number> {
  const batch = options.batch ?? MESSAGE_EXPIRY_BATCH
  const now = options.now ?? new Date()
  let deleted = 0
  // Expired rows the archive lacks are skipped by the seq cursor, so a backlog of them cannot stall the rest.
  let after: { expiresAt: Date; tenantId: string; conversationId: string; seq: string } | undefined
  for (let round = 0; round < (options.maxBatches ?? 100); round++) {
    let query = ctx.db
      .selectFrom('messages')
      .select(['tenant_id', 'conversation_id', 'seq', 'expires_at'])
      .where('expires_at', '<=', now)
    if (after) {
      const cursor = after
      query = query.where(
        (eb) =>
          sql<boolean>`(${eb.ref('expires_at')}, ${eb.ref('tenant_id')}, ${eb.ref('conversation_id')}, ${eb.ref('seq')})
            > (${cursor.expiresAt}::timestamptz, ${cursor.tenantId}, ${cursor.conversationId}, ${cursor.seq}::bigint)`,
      )
    }
    const expired = await query
      .orderBy('expires_at')
      .orderBy('tenant_id')
      .orderBy('conversation_id')
      .orderBy('seq')
      .limit(batch)
      .execute()
    if (expired.length === 0) break
    const refs = expired.map((row) => ({
      tenantId: row.tenant_id,
      conversationId: row.conversation_id,
      seq: String(row.seq),
    }))
    const archived = await options.isArchived(refs)
    const deletable = refs.filter((ref) => archived.has(`${ref.tenantId}/${ref.conversationId}/${ref.seq}`))
    if (deletable.length > 0) {
      const result = await sql<{ tenant_id: string; conversation_id: string; seq: string | number }>`
        delete from messages m
        using unnest(${deletable.map((r) => r.tenantId)}::text[], ${deletable.map((r) => r.conversationId)}::text[],
                     ${deletable.map((r) => r.seq)}::bigint[]) as d (tenant_id, conversation_id, seq)
        where m.tenant_id = d.tenant_id and m.conversation_id = d.conversation_id and m.seq = d.seq
          and m.expires_at <= ${now}::timestamptz
        returning m.tenant_id, m.conversation_id, m.seq
      `.execute(ctx.db)
      deleted += result.rows.length
      await options.purged?.(
        result.rows.map((row) => ({
          tenantId: row.tenant_id,
          conversationId: row.conversation_id,
          seq: String(row.seq),
        })),
      )
    }
    const last = expired.at(-1) as (typeof expired)[number]
    after = {
      expiresAt: new Date(last.expires_at as Date | string),
      tenantId: last.tenant_id,
      conversationId: last.conversation_id,
      seq: String(last.seq),
    }
    if (expired.length < batch) break
  }
  return deleted
}
