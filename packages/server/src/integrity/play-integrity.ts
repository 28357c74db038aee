import type { RiskSignals } from '@strongroom/sdk/integrity'
import type { IntegrityPolicy } from '@strongroom/sdk/protocol'
import { base64url } from 'jose'
import type { DevicePrincipal } from '../identity/devices.ts'
import type { ServerContext } from '../platform/context.ts'
import { expectedApp, playIntegrityKeys } from './apps.ts'
import { boundClientData, type HardwareFacts, refuseEvidence } from './hardware-attestation.ts'
import type { IntegrityFinding } from './policy.ts'
import { type PlayIntegrityVerdict, verifyPlayIntegrityToken } from './verifiers/play-integrity.ts'
import { AttestationError } from './verifiers/verifier.ts'

const FORMAT = 'play-integrity'

/**
 * Google's verdicts in the policy's terms. The device verdict replaces the app's own report of root and emulator (as
 * hardware attestation does): basic integrity only is a rooted or uncertified device, virtual integrity only an
 * emulator, none at all a device that cannot be trusted. An app Play does not recognize is denied; one not licensed
 * to the account gets the policy's `unlicensed` treatment.
 */
export function playIntegrityFacts(
  verdict: PlayIntegrityVerdict,
  reported: RiskSignals,
  unlicensed: IntegrityPolicy['unlicensed'],
): Omit<HardwareFacts, 'versionCode'> {
  const meets = (label: string) => verdict.device.includes(`MEETS_${label}_INTEGRITY`)
  const genuineDevice = meets('STRONG') || meets('DEVICE')
  const findings: IntegrityFinding[] = []
  if (verdict.appRecognition !== 'PLAY_RECOGNIZED') findings.push({ reason: 'app-not-recognized', treatment: 'deny' })
  if (!genuineDevice && !meets('BASIC') && !meets('VIRTUAL')) {
    findings.push({ reason: 'device-integrity-failed', treatment: 'deny' })
  }
  if (verdict.licensing === 'UNLICENSED')
    findings.push({ reason: 'app-unlicensed', treatment: unlicensed ?? 'limited' })
  const signals = {
    ...reported,
    rooted: !genuineDevice && meets('BASIC'),
    emulator: !genuineDevice && meets('VIRTUAL'),
  }
  const level = ['STRONG', 'DEVICE', 'VIRTUAL', 'BASIC'].find(meets)?.toLowerCase() ?? 'none'
  return { securityLevel: `play-${level}`, signals, findings }
}

/**
 * A Play Integrity token for the app the bank registered, with the keys it registered: its request hash must be
 * base64url(SHA-256(clientData)), the same client data hardware evidence covers (challenge, app id, version).
 */
export async function verifyPlayIntegrityEvidence(
  ctx: Pick<ServerContext, 'db' | 'keyring'>,
  device: DevicePrincipal,
  input: { token: string; challenge: string; appId: string; appVersion: string; signals: RiskSignals },
  policy: Pick<IntegrityPolicy, 'unlicensed'>,
): Promise<HardwareFacts> {
  const android = (await expectedApp(ctx, device.tenantId, input.appId))?.android
  if (!android) return refuseEvidence(ctx, device, FORMAT, 'app-not-registered', input)
  const keys = await playIntegrityKeys(ctx, device.tenantId, input.appId)
  if (!keys) return refuseEvidence(ctx, device, FORMAT, 'not-configured', input)
  let verdict: PlayIntegrityVerdict
  try {
    verdict = await verifyPlayIntegrityToken({
      token: input.token,
      keys,
      app: android,
      requestHash: base64url.encode(boundClientData(input).digest),
      now: new Date(),
    })
  } catch (error) {
    if (error instanceof AttestationError) return refuseEvidence(ctx, device, FORMAT, error.code, input)
    throw error
  }
  return { ...playIntegrityFacts(verdict, input.signals, policy.unlicensed), versionCode: verdict.versionCode }
}
