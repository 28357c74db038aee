import { fetchMessages } from '../conversations/messages.ts'
import type { ServerContext } from '../platform/context.ts'
import { indexPublicText } from './message-search.ts'
import { openPublicMessage } from './public-messages.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring'>

/** A public-channel message in the search backfill's (tenant, id) order, with the customer it is from or to. */
export interface StoredPublicMessage {
  tenantId: string
  id: string
  conversationId: string
  seq: number
  /** Null while the sender is not matched to a customer. */
  customerId: string | null
}

/** The next public-channel messages of every tenant after `after`, in (tenant, id) order, for the search backfill. */
export async function publicMessagesAfter(
  ctx: Pick<ServerContext, 'db'>,
  after: { tenantId: string; id: string },
  limit: number,
): Promise<StoredPublicMessage[]> {
  const rows = await ctx.db
    .selectFrom('channel_messages as m')
    .innerJoin('channel_identities as i', (join) =>
      join.onRef('i.tenant_id', '=', 'm.tenant_id').onRef('i.id', '=', 'm.identity_id'),
    )
    .select(['m.tenant_id', 'm.id', 'm.conversation_id', 'm.seq', 'i.customer_id'])
    .where((eb) => eb(eb.refTuple('m.tenant_id', 'm.id'), '>', eb.tuple(after.tenantId, after.id)))
    // A message not yet in the log is indexed by the statement that puts it there.
    .where('m.seq', 'is not', null)
    .orderBy('m.tenant_id')
    .orderBy('m.id')
    .limit(limit)
    .execute()
  return rows.map((r) => ({
    tenantId: r.tenant_id,
    id: r.id,
    conversationId: r.conversation_id,
    seq: Number(r.seq),
    customerId: r.customer_id,
  }))
}

/**
 * Indexes the words of a stored public-channel message as its text stands now (after DLP masking, the later masking
 * included), in the caller's transaction; false when its text is gone (its ciphertext expired).
 */
export async function indexStoredPublicText(ctx: Ctx, message: StoredPublicMessage): Promise<boolean> {
  const [stored] = await fetchMessages(ctx, message.tenantId, message.conversationId, {
    afterSeq: message.seq - 1,
    untilSeq: message.seq,
    limit: 1,
  })
  const opened = stored && (await openPublicMessage(ctx, message.tenantId, stored))
  if (!opened) return false
  await indexPublicText(ctx, message, opened.text)
  return true
}
