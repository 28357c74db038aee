import { recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { type DeviceStateChange, lockDevice, setDeviceStatus } from './devices.ts'

/**
 * Revokes a device, active or suspended: it is marked revoked, its access tokens are deleted (so the next request is
 * refused on every node, and the key can no longer get a token), and the revocation is audited. A device still pending
 * (its enrolment code not used yet: a customer seeing from another device that someone is adding one they did not
 * expect) is revoked by ending its code, so that it never enrols. With `customerId`, only a device of that customer may
 * be revoked (a customer revoking a lost phone from another device). Revoking a revoked device changes nothing. Run it
 * in the caller's transaction with whatever else revocation removes.
 */
export async function revokeDevice(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  deviceId: string,
  options: DeviceStateChange,
): Promise<{ revoked: boolean }> {
  const now = new Date()
  // The code expires as of its issue, before any moment an enrolment could have checked it against. An enrolment
  // racing with this waits on the code's row: if it wins, the code is spent and the device is revoked below as an
  // enrolled one.
  let pending = ctx.db
    .updateTable('enrolment_codes')
    .set((eb) => ({ expires_at: eb.ref('created_at') }))
    .where('tenant_id', '=', tenantId)
    .where('device_id', '=', deviceId)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
  if (options.customerId) pending = pending.where('customer_id', '=', options.customerId)
  const ended = await pending.returning(['id', 'customer_id']).executeTakeFirst()
  if (ended) {
    await audit(ctx, tenantId, deviceId, options, { customerId: ended.customer_id, from: 'pending' })
    return { revoked: true }
  }
  const device = await lockDevice(ctx, tenantId, deviceId, options.customerId)
  if (device.status === 'revoked') return { revoked: false }
  await setDeviceStatus(ctx, tenantId, deviceId, 'revoked')
  await audit(ctx, tenantId, deviceId, options, { customerId: device.customer_id, from: device.status })
  return { revoked: true }
}

function audit(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  deviceId: string,
  options: DeviceStateChange,
  details: { customerId: string; from: string },
) {
  return recordAudit(ctx.db, {
    tenantId,
    actor: options.actor,
    action: 'device.revoke',
    target: { kind: 'device', id: deviceId },
    outcome: 'success',
    reason: options.reason,
    details,
  })
}
