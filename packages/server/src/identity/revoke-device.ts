import { recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { type DeviceStateChange, lockDevice, setDeviceStatus } from './devices.ts'

/**
 * Revokes a device, active or suspended: it is marked revoked, its access tokens are deleted (so the next request is
 * refused on every node, and the key can no longer get a token), and the revocation is audited. With `customerId`,
 * only a device of that customer may be revoked (a customer revoking a lost phone from another device). Revoking a
 * revoked device changes nothing. Run it in the caller's transaction with whatever else revocation removes.
 */
export async function revokeDevice(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  deviceId: string,
  options: DeviceStateChange,
): Promise<{ revoked: boolean }> {
  const device = await lockDevice(ctx, tenantId, deviceId, options.customerId)
  if (device.status === 'revoked') return { revoked: false }
  await setDeviceStatus(ctx, tenantId, deviceId, 'revoked')
  await recordAudit(ctx.db, {
    tenantId,
    actor: options.actor,
    action: 'device.revoke',
    target: { kind: 'device', id: deviceId },
    outcome: 'success',
    reason: options.reason,
    details: { customerId: device.customer_id, from: device.status },
  })
  return { revoked: true }
}
