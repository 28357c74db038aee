import type { ServerContext } from '../platform/context.ts'
import type { IntegrityDecision } from './policy.ts'

/** The integrity policy's latest decision for a device, as staff see it. */
export interface DeviceVerdict {
  deviceId: string
  decision: IntegrityDecision['decision']
  reason: string
  flags: string[]
  format: string
  securityLevel: string
  appVersion: string
  decidedAt: string
}

/** Keeps the decision an attestation led to as the device's latest verdict (the audit log keeps every one). */
export async function recordDeviceVerdict(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  verdict: Omit<DeviceVerdict, 'decidedAt'>,
): Promise<void> {
  const row = {
    decision: verdict.decision,
    reason: verdict.reason,
    flags: verdict.flags.join(' '),
    format: verdict.format,
    security_level: verdict.securityLevel,
    app_version: verdict.appVersion,
    decided_at: new Date(),
  }
  await ctx.db
    .insertInto('device_integrity_verdicts')
    .values({ tenant_id: tenantId, device_id: verdict.deviceId, ...row })
    .onConflict((oc) => oc.columns(['tenant_id', 'device_id']).doUpdateSet(row))
    .execute()
}

/** The latest verdicts of these devices of the tenant; a device that never attested has none. */
export async function deviceVerdicts(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  deviceIds: string[],
): Promise<DeviceVerdict[]> {
  if (deviceIds.length === 0) return []
  const rows = await ctx.db
    .selectFrom('device_integrity_verdicts')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('device_id', 'in', deviceIds)
    .execute()
  return rows.map((row) => ({
    deviceId: row.device_id,
    decision: row.decision,
    reason: row.reason,
    flags: row.flags === '' ? [] : row.flags.split(' '),
    format: row.format,
    securityLevel: row.security_level,
    appVersion: row.app_version,
    decidedAt: new Date(row.decided_at).toISOString(),
  }))
}
