import { recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { type DeviceStateChange, lockDevice, setDeviceStatus } from './devices.ts'

/**
 * Resumes a suspended device: it may get access tokens again with its key, and reads what its conversations received
 * meanwhile. Resuming an active device changes nothing; a revoked device cannot be resumed. Audited.
 */
export async function resumeDevice(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  deviceId: string,
  change: DeviceStateChange,
): Promise<{ resumed: boolean }> {
  return ctx.db.transaction().execute(async (trx) => {
    const device = await lockDevice({ db: trx }, tenantId, deviceId, change.customerId)
    if (device.status === 'revoked') throw new Problem('identity/device-revoked')
    if (device.status === 'active') return { resumed: false }
    await setDeviceStatus({ db: trx }, tenantId, deviceId, 'active')
    await recordAudit(trx, {
      tenantId,
      actor: change.actor,
      action: 'device.resume',
      target: { kind: 'device', id: deviceId },
      outcome: 'success',
      reason: change.reason,
      details: { customerId: device.customer_id },
    })
    return { resumed: true }
  })
}
