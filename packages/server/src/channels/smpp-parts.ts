import type { ServerContext } from '../platform/context.ts'
import type { DeliveryReceipt, DeliveryStatus } from './connectors/connector.ts'

type Ctx = Pick<ServerContext, 'db'>

/** A long SMS went out in parts: their SMSC ids, so that each part's receipt is tied to the message (its first id). */
export async function recordMessageParts(ctx: Ctx, tenantId: string, partIds: string[]): Promise<void> {
  const [messageId] = partIds
  if (messageId === undefined) return
  const now = new Date()
  await ctx.db
    .insertInto('smpp_message_parts')
    .values(
      partIds.map((partId) => ({
        tenant_id: tenantId,
        part_id: partId,
        message_id: messageId,
        status: 'queued',
        error_code: null,
        created_at: now,
      })),
    )
    .onConflict((oc) => oc.doNothing())
    .execute()
}

const ORDER: DeliveryStatus[] = ['queued', 'sent', 'delivered']

/**
 * The receipt for the whole message that a part's receipt amounts to: failed as soon as one part failed, else the
 * state every part has reached (delivered only when all are). A receipt for a single-part message is itself.
 * The message's parts are locked while their states are read and written, so receipts for two parts arriving at once
 * on two nodes cannot both miss the other.
 */
export async function receiptForPart(ctx: Ctx, tenantId: string, receipt: DeliveryReceipt): Promise<DeliveryReceipt> {
  return ctx.db.transaction().execute(async (trx) => {
    const part = await trx
      .selectFrom('smpp_message_parts')
      .select('message_id')
      .where('tenant_id', '=', tenantId)
      .where('part_id', '=', receipt.providerMessageId)
      .executeTakeFirst()
    if (!part) return receipt
    const parts = await trx
      .selectFrom('smpp_message_parts')
      .select(['part_id', 'status', 'error_code'])
      .where('tenant_id', '=', tenantId)
      .where('message_id', '=', part.message_id)
      .orderBy('part_id')
      .forUpdate()
      .execute()
    const current = parts.find((p) => p.part_id === receipt.providerMessageId)
    // A part's state only moves forward, as a message's does; failed stays failed.
    if (current && current.status !== 'failed' && rank(receipt.status) > rank(current.status as DeliveryStatus)) {
      current.status = receipt.status
      current.error_code = receipt.errorCode ?? null
      await trx
        .updateTable('smpp_message_parts')
        .set({ status: receipt.status, error_code: receipt.errorCode ?? null })
        .where('tenant_id', '=', tenantId)
        .where('part_id', '=', receipt.providerMessageId)
        .execute()
    }
    const failed = parts.find((p) => p.status === 'failed')
    if (failed) {
      return failed.error_code === null
        ? { providerMessageId: part.message_id, status: 'failed' }
        : { providerMessageId: part.message_id, status: 'failed', errorCode: failed.error_code }
    }
    const reached = Math.min(...parts.map((p) => rank(p.status as DeliveryStatus)))
    return { providerMessageId: part.message_id, status: ORDER[reached] ?? 'queued' }
  })
}

function rank(status: DeliveryStatus): number {
  return status === 'failed' ? ORDER.length : Math.max(0, ORDER.indexOf(status))
}
