import { sql } from 'kysely'
import type { ServerContext } from '../platform/context.ts'
import type { WireMessage } from './bus-events.ts'
import { toWireMessage } from './message-log.ts'

/**
 * Messages of one conversation after a sequence number, in order, without those past their expiry. The caller has
 * already checked that the principal may read the conversation.
 */
export async function fetchMessages(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  conversationId: string,
  range: { afterSeq: number; limit: number; untilSeq?: number | undefined },
): Promise<WireMessage[]> {
  let query = ctx.db
    .selectFrom('messages')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('conversation_id', '=', conversationId)
    .where('seq', '>', range.afterSeq)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]))
    .orderBy('seq')
    .limit(range.limit)
  if (range.untilSeq !== undefined) query = query.where('seq', '<=', range.untilSeq)
  const rows = await query.execute()
  return rows.map(toWireMessage)
}

/**
 * Replaces the sealed content of a message the server itself sealed (a public-channel message that DLP masks after
 * the fact, when its continuation shows it held part of a card number), in the caller's transaction. Only a message
 * of that content type is touched; returns whether one was.
 */
export async function resealMessageIn(
  trx: ServerContext['db'],
  message: { tenantId: string; conversationId: string; seq: number; contentType: string },
  ciphertext: Uint8Array,
): Promise<boolean> {
  const updated = await trx
    .updateTable('messages')
    .set({ ciphertext })
    .where('tenant_id', '=', message.tenantId)
    .where('conversation_id', '=', message.conversationId)
    .where('seq', '=', message.seq)
    .where('content_type', '=', message.contentType)
    .executeTakeFirst()
  return (updated.numUpdatedRows ?? 0n) > 0n
}
