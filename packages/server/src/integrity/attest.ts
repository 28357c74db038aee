import { devAttestationPayload, type RiskSignals } from '@strongroom/sdk/integrity'
import type { IntegrityPolicy } from '@strongroom/sdk/protocol'
import { compactVerify, importJWK } from 'jose'
import { recordAudit } from '../audit/events.ts'
import { type DevicePrincipal, devicePublicJwk } from '../identity/devices.ts'
import { algorithmsForKey } from '../identity/dpop.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import { verifyAndroidAttestedDevice } from './android-key.ts'
import { isAppVersionDeactivated, versionSwitchKey } from './app-versions.ts'
import { consumeChallenge } from './challenges.ts'
import { recordDeviceVerdict } from './device-verdicts.ts'
import {
  auditRefusedEvidence,
  type HardwareFacts,
  type HardwareVerifiers,
  verifyAppAttestEvidence,
  verifyHardwareAssertion,
} from './hardware-attestation.ts'
import { verifyPlayIntegrityEvidence } from './play-integrity.ts'
import { type AttestedVersion, evaluateIntegrityPolicy, loadIntegrityPolicy } from './policy.ts'
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
  const algorithms = algorithmsForKey(jwk)
  let signed: string
  try {
    const { payload } = await compactVerify(evidence.proof, await importJWK(jwk, algorithms[0]), { algorithms })
    signed = new TextDecoder().decode(payload)
  } catch {
    throw new Problem('integrity/invalid-evidence', 'the proof does not verify with this device key')
  }
  if (signed !== devAttestationPayload(evidence.challenge, evidence, evidence.signals)) {
    throw new Problem('integrity/invalid-evidence', 'the proof does not cover this evidence')
  }
}

interface HardwareEvidenceBase {
  challenge: string
  appId: string
  appVersion: string
  signals: RiskSignals
}

/**
 * Evidence from the app: the dev format, App Attest (its attestation, then assertions), Android Key Attestation (the
 * device key attested at enrolment or re-keying, proven by the request's DPoP proof) or Play Integrity. `appId` and
 * `appVersion` are a claim the evidence must cover (the dev proof signs them; App Attest and Play Integrity cover the
 * SDK's `attestationClientData`); an Android app may also claim its `versionCode`, which must be the attested one.
 * The minimum version and the version switch use the attested version: Android's versionCode, App Attest's version
 * bound at attestation; so a claim cannot sidestep them.
 */
export type Evidence =
  | DevEvidence
  | (HardwareEvidenceBase & { format: 'apple-appattest'; attestationObject: string; keyId: string })
  | (HardwareEvidenceBase & { format: 'apple-appattest-assertion'; assertion: string })
  | (HardwareEvidenceBase & { format: 'android-key'; versionCode?: number | undefined })
  | (HardwareEvidenceBase & { format: 'play-integrity'; token: string; versionCode?: number | undefined })

/**
 * The version the platform attested, refusing (audited) a claim that says otherwise: Android's versionCode against
 * the one claimed; elsewhere the version bound at attestation (an App Attest assertion is checked against its key's
 * bound version where it is verified).
 */
async function attestedVersion(
  ctx: Pick<ServerContext, 'db'>,
  device: DevicePrincipal,
  evidence: Evidence,
  facts: HardwareFacts,
): Promise<AttestedVersion> {
  const claimedCode = 'versionCode' in evidence ? evidence.versionCode : undefined
  if (claimedCode !== undefined && claimedCode !== facts.versionCode) {
    await auditRefusedEvidence(ctx, device, 'integrity.attest', 'app-version-mismatch', {
      format: evidence.format,
      appId: evidence.appId,
      appVersion: evidence.appVersion,
      claimedVersionCode: String(claimedCode),
      versionCode: String(facts.versionCode ?? 'none'),
    })
    throw new Problem('integrity/invalid-evidence', 'app-version-mismatch')
  }
  if (facts.versionCode !== undefined) return { versionCode: facts.versionCode }
  return { appVersion: facts.boundAppVersion ?? evidence.appVersion }
}

/** Checks the evidence in its own format; returns the signals the policy weighs and what the hardware attested. */
async function verifyEvidence(
  ctx: Pick<ServerContext, 'db' | 'config' | 'keyring'>,
  verifiers: HardwareVerifiers,
  device: DevicePrincipal,
  evidence: Evidence,
  policy: IntegrityPolicy,
): Promise<HardwareFacts> {
  switch (evidence.format) {
    case 'dev':
      await verifyDevEvidence(ctx, device, evidence)
      return { signals: evidence.signals, securityLevel: 'software' }
    case 'apple-appattest-assertion':
      return verifyHardwareAssertion(ctx, device, evidence)
    case 'apple-appattest':
      return verifyAppAttestEvidence(ctx, verifiers, device, {
        ...evidence,
        evidence: { format: 'apple-appattest', attestationObject: evidence.attestationObject, keyId: evidence.keyId },
      })
    case 'android-key':
      return verifyAndroidAttestedDevice(ctx, device, evidence)
    case 'play-integrity':
      return verifyPlayIntegrityEvidence(ctx, device, evidence, policy)
  }
}

/**
 * Attestation: evidence is verified, its challenge used up (once), the policy applied, and an integrity token issued
 * (or refused with the policy's reason). Every decision is audited with its reason.
 */
export async function attest(
  ctx: Pick<ServerContext, 'db' | 'config' | 'keyring'>,
  key: SigningKey,
  verifiers: HardwareVerifiers,
  device: DevicePrincipal,
  evidence: Evidence,
) {
  const policy = await loadIntegrityPolicy(ctx, device.tenantId)
  const facts = await verifyEvidence(ctx, verifiers, device, evidence, policy)
  const { signals, securityLevel, versionCode, findings } = facts
  const version = await attestedVersion(ctx, device, evidence, facts)
  if (!(await consumeChallenge(ctx, device.tenantId, device.deviceId, evidence.challenge))) {
    throw new Problem('integrity/invalid-evidence', 'the challenge is unknown, used or expired')
  }
  const switchedBy = { appId: evidence.appId, appVersion: versionSwitchKey(version) }
  const deactivated = await isAppVersionDeactivated(ctx, device.tenantId, switchedBy)
  const decision = evaluateIntegrityPolicy({ version, signals, deactivated, findings }, policy)
  const flags = Object.entries(signals)
    .filter(([, on]) => on)
    .map(([name]) => name)
  await recordAudit(ctx.db, {
    tenantId: device.tenantId,
    actor: { kind: 'device', id: device.deviceId },
    action: 'integrity.attest',
    target: { kind: 'device', id: device.deviceId },
    outcome: decision.decision === 'deny' ? 'denied' : 'success',
    reason: decision.reason,
    details: {
      format: evidence.format,
      securityLevel,
      appId: evidence.appId,
      appVersion: evidence.appVersion,
      ...(versionCode === undefined ? {} : { versionCode }),
      flags,
    },
  })
  await recordDeviceVerdict(ctx, device.tenantId, {
    deviceId: device.deviceId,
    decision: decision.decision,
    reason: decision.reason,
    flags,
    format: evidence.format,
    securityLevel,
    appVersion: evidence.appVersion,
  })
  if (decision.decision === 'deny') throw new Problem('integrity/denied', decision.reason)
  const appAttested = evidence.format === 'apple-appattest' || evidence.format === 'apple-appattest-assertion'
  const assertRequests = appAttested && policy.assertions === true
  const token = await issueIntegrityToken(key, {
    tenantId: device.tenantId,
    deviceId: device.deviceId,
    keyThumbprint: device.jkt,
    appId: evidence.appId,
    appVersion: switchedBy.appVersion,
    verdict: decision.decision,
    flags,
    scope: decision.scope,
    lifetimeSeconds: decision.lifetimeSeconds,
    assertRequests,
  })
  return {
    integrityToken: token,
    expiresIn: decision.lifetimeSeconds,
    scope: decision.scope,
    reason: decision.reason,
    assertRequests,
  }
}
