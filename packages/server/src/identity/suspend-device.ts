import { recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { type DeviceStateChange, lockDevice, setDeviceStatus } from './devices.ts'

/**
 * Suspends a device for a while (the customer mislaid it): its access tokens are deleted and its key gets no new one,
 * so every node refuses it from its next request, while it stays a member of its conversations and their MLS groups
 * and its local store is left alone. Suspending a suspended device changes nothing; a revoked one stays revoked.
 * Audited. The caller announces it on the bus once committed, so that open sockets close.
 */
export async function suspendDevice(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  deviceId: string,
  change: DeviceStateChange,
): Promise<{ suspended: boolean }> {
  return ctx.db.transaction().execute(async (trx) => {
    const device = await lockDevice({ db: trx }, tenantId, deviceId, change.customerId)
    if (device.status === 'revoked') throw new Problem('identity/device-revoked')
    if (device.status === 'suspended') return { suspended: false }
    await setDeviceStatus({ db: trx }, tenantId, deviceId, 'suspended')
    await recordAudit(trx, {
      tenantId,
      actor: change.actor,
      action: 'device.suspend',
      target: { kind: 'device', id: deviceId },
      outcome: 'success',
      reason: change.reason,
      details: { customerId: device.customer_id },
    })
    return { suspended: true }
  })
}
