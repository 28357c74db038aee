import { devAttestationPayload, type RiskSignals } from '@strongroom/sdk/integrity'
import { compactVerify, importJWK } from 'jose'
import { recordAudit } from '../audit/events.ts'
import { type DevicePrincipal, devicePublicJwk } from '../identity/devices.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import { isAppVersionDeactivated } from './app-versions.ts'
import { consumeChallenge } from './challenges.ts'
import { evaluateIntegrityPolicy } from './policy.ts'
import { issueIntegrityToken } from './tokens.ts'

export interface DevEvidence {
  format: 'dev'
  challenge: string
  appId: string
  appVersion: string
  signals: RiskSignals
  proof: string
}

/**
 * The dev verifier: the device key signed the challenge, the app identity and the signals. It proves no hardware
 * and no genuine app, so only a dev-mode server accepts it.
 */
async function verifyDevEvidence(
  ctx: Pick<ServerContext, 'db' | 'config'>,
  device: DevicePrincipal,
  evidence: DevEvidence,
) {
  if (ctx.config.mode !== 'dev') throw new Problem('integrity/verifier-not-allowed', 'the dev verifier is dev-only')
  const jwk = await devicePublicJwk(ctx, device.tenantId, device.deviceId)
  const algorithm = jwk.kty === 'OKP' ? 'EdDSA' : 'ES256'
  let signed: string
  try {
    const { payload } = await compactVerify(evidence.proof, await importJWK(jwk, algorithm), {
      algorithms: [algorithm],
    })
    signed = new TextDecoder().decode(payload)
  } catch {
    throw new Problem('integrity/invalid-evidence', 'the proof does not verify with this device key')
  }
  if (signed !== devAttestationPayload(evidence.challenge, evidence, evidence.signals)) {
    throw new Problem('integrity/invalid-evidence', 'the proof does not cover this evidence')
  }
}

/**
 * Attestation: evidence is verified, its challenge used up (once), the policy applied, and an integrity token issued
 * (or refused with the policy's reason). Every decision is audited with its reason.
 */
export async function attest(
  ctx: Pick<ServerContext, 'db' | 'config'>,
  key: SigningKey,
  device: DevicePrincipal,
  evidence: DevEvidence,
) {
  await verifyDevEvidence(ctx, device, evidence)
  if (!(await consumeChallenge(ctx, device.tenantId, device.deviceId, evidence.challenge))) {
    throw new Problem('integrity/invalid-evidence', 'the challenge is unknown, used or expired')
  }
  const deactivated = await isAppVersionDeactivated(ctx, device.tenantId, evidence)
  const decision = evaluateIntegrityPolicy({ ...evidence, deactivated }, { minAppVersion: ctx.config.minAppVersion })
  const flags = Object.entries(evidence.signals)
    .filter(([, on]) => on)
    .map(([name]) => name)
  await recordAudit(ctx.db, {
    tenantId: device.tenantId,
    actor: { kind: 'device', id: device.deviceId },
    action: 'integrity.attest',
    target: { kind: 'device', id: device.deviceId },
    outcome: decision.decision === 'deny' ? 'denied' : 'success',
    reason: decision.reason,
    details: { format: evidence.format, appId: evidence.appId, appVersion: evidence.appVersion, flags },
  })
  if (decision.decision === 'deny') throw new Problem('integrity/denied', decision.reason)
  const token = await issueIntegrityToken(key, {
    tenantId: device.tenantId,
    deviceId: device.deviceId,
    keyThumbprint: device.jkt,
    appId: evidence.appId,
    appVersion: evidence.appVersion,
    verdict: decision.decision,
    flags,
    scope: decision.scope,
    lifetimeSeconds: decision.lifetimeSeconds,
  })
  return { integrityToken: token, expiresIn: decision.lifetimeSeconds, scope: decision.scope, reason: decision.reason }
}
