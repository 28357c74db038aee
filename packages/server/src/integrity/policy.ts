import type { RiskSignals } from '@strongroom/sdk/integrity'

export interface IntegrityDecision {
  decision: 'allow' | 'limited' | 'deny'
  /** A code the app can show and the audit log keeps. */
  reason: string
  lifetimeSeconds: number
  scope: 'full' | 'read-only'
}

const FULL_LIFETIME_SECONDS = 600
const LIMITED_LIFETIME_SECONDS = 60

function versionBelow(version: string, minimum: string): boolean {
  const a = version.split('.').map(Number)
  const b = minimum.split('.').map(Number)
  for (let i = 0; i < 3; i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) < (b[i] ?? 0)
  }
  return false
}

/**
 * The integrity policy, as one table read top to bottom: the first matching rule decides. Tampering (a hooking
 * framework, a debugger), deactivated and outdated app versions are denied; a rooted device or an emulator gets a short, read-only token.
 */
export function evaluateIntegrityPolicy(
  evidence: { appVersion: string; signals: RiskSignals; deactivated: boolean },
  policy: { minAppVersion: string },
): IntegrityDecision {
  const deny = (reason: string): IntegrityDecision => ({
    decision: 'deny',
    reason,
    lifetimeSeconds: 0,
    scope: 'read-only',
  })
  const limited = (reason: string): IntegrityDecision => ({
    decision: 'limited',
    reason,
    lifetimeSeconds: LIMITED_LIFETIME_SECONDS,
    scope: 'read-only',
  })
  if (evidence.deactivated) return deny('app-version-deactivated')
  if (evidence.signals.hooking) return deny('hooking-framework')
  if (evidence.signals.debugger) return deny('debugger-attached')
  if (versionBelow(evidence.appVersion, policy.minAppVersion)) return deny('app-version-below-minimum')
  if (evidence.signals.rooted) return limited('rooted-device')
  if (evidence.signals.emulator) return limited('emulator')
  return { decision: 'allow', reason: 'ok', lifetimeSeconds: FULL_LIFETIME_SECONDS, scope: 'full' }
}
