import type { RiskSignals } from '@strongroom/sdk/integrity'
import type { IntegrityPolicy } from '@strongroom/sdk/protocol'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'

export const DEFAULT_INTEGRITY_POLICY: IntegrityPolicy = {
  rooted: 'limited',
  emulator: 'limited',
  debugger: 'deny',
  hooking: 'deny',
  fullLifetimeSeconds: 600,
  limitedLifetimeSeconds: 60,
}

export interface IntegrityDecision {
  decision: 'allow' | 'limited' | 'deny'
  /** A code the app can show and the audit log keeps. */
  reason: string
  lifetimeSeconds: number
  scope: 'full' | 'read-only'
}

function versionBelow(version: string, minimum: string): boolean {
  const a = version.split('.').map(Number)
  const b = minimum.split('.').map(Number)
  for (let i = 0; i < 3; i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) < (b[i] ?? 0)
  }
  return false
}

/** Reason codes for the signals, as the app shows them and the audit log keeps them. */
const SIGNAL_REASONS = {
  hooking: 'hooking-framework',
  debugger: 'debugger-attached',
  rooted: 'rooted-device',
  emulator: 'emulator',
} as const satisfies Record<keyof RiskSignals, string>

/** What a platform verdict (Play Integrity) found beyond the risk signals, and how the policy treats it. */
export interface IntegrityFinding {
  reason: string
  treatment: 'allow' | 'limited' | 'deny'
}

/**
 * The app's version as attested: Android's versionCode where the platform attested one, otherwise the version bound
 * at attestation (App Attest's covered client data; the dev verifier's signed claim).
 */
export type AttestedVersion = { versionCode: number } | { appVersion: string }

function belowMinimum(version: AttestedVersion, policy: IntegrityPolicy & { minAppVersion: string }): boolean {
  if ('versionCode' in version)
    return policy.minVersionCode !== undefined && version.versionCode < policy.minVersionCode
  return versionBelow(version.appVersion, policy.minAppVersion)
}

/**
 * The integrity decision, as one table read top to bottom: a deactivated or outdated app version (as attested) is
 * denied; then every signal present gets the policy's treatment for it, as does every finding of a platform verdict,
 * and the strictest wins (deny, then limited).
 */
export function evaluateIntegrityPolicy(
  evidence: { version: AttestedVersion; signals: RiskSignals; deactivated: boolean; findings?: IntegrityFinding[] },
  policy: IntegrityPolicy & { minAppVersion: string },
): IntegrityDecision {
  const deny = (reason: string): IntegrityDecision => ({
    decision: 'deny',
    reason,
    lifetimeSeconds: 0,
    scope: 'read-only',
  })
  if (evidence.deactivated) return deny('app-version-deactivated')
  if (belowMinimum(evidence.version, policy)) return deny('app-version-below-minimum')
  const present = (Object.keys(SIGNAL_REASONS) as (keyof RiskSignals)[]).filter((signal) => evidence.signals[signal])
  const treated = [
    ...present.map((signal) => ({ reason: SIGNAL_REASONS[signal], treatment: policy[signal] })),
    ...(evidence.findings ?? []),
  ]
  const denied = treated.find((finding) => finding.treatment === 'deny')
  if (denied) return deny(denied.reason)
  const limited = treated.find((finding) => finding.treatment === 'limited')
  if (limited) {
    return {
      decision: 'limited',
      reason: limited.reason,
      lifetimeSeconds: policy.limitedLifetimeSeconds,
      scope: 'read-only',
    }
  }
  return { decision: 'allow', reason: 'ok', lifetimeSeconds: policy.fullLifetimeSeconds, scope: 'full' }
}

/** The tenant's policy, or the defaults; the minimum app version falls back to the deployment's setting. */
export async function loadIntegrityPolicy(
  ctx: Pick<ServerContext, 'db' | 'config'>,
  tenantId: string,
): Promise<IntegrityPolicy & { minAppVersion: string }> {
  const row = await ctx.db
    .selectFrom('integrity_policies')
    .select('document')
    .where('tenant_id', '=', tenantId)
    .executeTakeFirst()
  const policy = row ? (JSON.parse(row.document) as IntegrityPolicy) : DEFAULT_INTEGRITY_POLICY
  return { ...policy, minAppVersion: policy.minAppVersion ?? ctx.config.minAppVersion }
}

/** Replaces the tenant's integrity policy, audited; nodes apply it within their cache time (five seconds). */
export async function saveIntegrityPolicy(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  policy: IntegrityPolicy,
  actor: Actor,
): Promise<void> {
  const values = { document: JSON.stringify(policy), updated_at: new Date() }
  await ctx.db.transaction().execute(async (trx) => {
    await trx
      .insertInto('integrity_policies')
      .values({ tenant_id: tenantId, ...values })
      .onConflict((oc) => oc.column('tenant_id').doUpdateSet(values))
      .execute()
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'policy.integrity.update',
      outcome: 'success',
      details: {
        required: policy.required ?? null,
        minAppVersion: policy.minAppVersion ?? null,
        minVersionCode: policy.minVersionCode ?? null,
        attestEnrolment: policy.attestEnrolment ?? false,
        assertions: policy.assertions ?? false,
        rooted: policy.rooted,
        emulator: policy.emulator,
        debugger: policy.debugger,
        hooking: policy.hooking,
      },
    })
  })
}

const POLICY_CACHE_MS = 5000

/**
 * The tenant's own integrity policy (undefined without one), read on every device request and so kept for a few
 * seconds per node: a change takes effect on every node within that time. When it is read again, every request and
 * stream frame that asks meanwhile waits for that one read: each used to read it for itself, and the reads, ending in
 * any order, let a stream's later frames overtake its earlier ones on their way to the message log.
 */
export function cachedIntegrityPolicy(ctx: Pick<ServerContext, 'db'>) {
  const cache = new Map<string, { policy: Promise<IntegrityPolicy | undefined>; until: number }>()
  return (tenantId: string): Promise<IntegrityPolicy | undefined> => {
    let entry = cache.get(tenantId)
    if (!entry || entry.until <= Date.now()) {
      const read = ctx.db
        .selectFrom('integrity_policies')
        .select('document')
        .where('tenant_id', '=', tenantId)
        .executeTakeFirst()
        .then((row) => (row ? (JSON.parse(row.document) as IntegrityPolicy) : undefined))
      const fresh = { policy: read, until: Date.now() + POLICY_CACHE_MS }
      entry = fresh
      cache.set(tenantId, fresh)
      // A read that failed is not kept: the next request reads again.
      read.catch(() => {
        if (cache.get(tenantId) === fresh) cache.delete(tenantId)
      })
    }
    return entry.policy
  }
}

/**
 * Whether a device route of the tenant needs an integrity token: every route when the tenant (or, without a choice of
 * its own, the deployment) requires tokens, otherwise the routes the tenant marked.
 */
export function integrityRequirement(
  ctx: Pick<ServerContext, 'config'>,
  policyOf: (tenantId: string) => Promise<IntegrityPolicy | undefined>,
) {
  return async (tenantId: string, route: string): Promise<boolean> => {
    const policy = await policyOf(tenantId)
    return (policy?.required ?? ctx.config.integrityRequired) || (policy?.routes ?? []).includes(route)
  }
}
