import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'

/**
 * Revokes a device: it is marked revoked, its access tokens are deleted (so the next request is refused on every node,
 * and the key can no longer get a token), and the revocation is audited. With `customerId`, only a device of that
 * customer may be revoked (a customer revoking a lost phone from another device). Revoking a revoked device changes
 * nothing. Run it in the caller's transaction with whatever else revocation removes.
 */
export async function revokeDevice(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  deviceId: string,
  options: { actor: Actor; reason?: string | undefined; customerId?: string | undefined },
): Promise<{ revoked: boolean }> {
  let query = ctx.db
    .selectFrom('devices')
    .select(['id', 'customer_id', 'status'])
    .where('tenant_id', '=', tenantId)
    .where('id', '=', deviceId)
  if (options.customerId) query = query.where('customer_id', '=', options.customerId)
  const device = await query.forUpdate().executeTakeFirst()
  if (!device) throw new Problem('request/not-found', 'no such device')
  if (device.status === 'revoked') return { revoked: false }
  await ctx.db
    .updateTable('devices')
    .set({ status: 'revoked' })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', deviceId)
    .execute()
  await ctx.db.deleteFrom('access_tokens').where('tenant_id', '=', tenantId).where('device_id', '=', deviceId).execute()
  await recordAudit(ctx.db, {
    tenantId,
    actor: options.actor,
    action: 'device.revoke',
    target: { kind: 'device', id: deviceId },
    outcome: 'success',
    reason: options.reason,
    details: { customerId: device.customer_id },
  })
  return { revoked: true }
}
