import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { attestationClientData, type RiskSignals } from '@strongroom/sdk/integrity'
import type { JWK } from 'jose'
import { recordAudit } from '../audit/events.ts'
import type { DevicePrincipal } from '../identity/devices.ts'
import type { Config } from '../platform/config.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { expectedApp } from './apps.ts'
import type { AttestationStatusList } from './attestation-status-list.ts'
import type { IntegrityFinding } from './policy.ts'
import { createAndroidKeyAttestationVerifier } from './verifiers/android-key-attestation.ts'
import { createAppleAppAttestVerifier, verifyAppAttestAssertion } from './verifiers/apple-app-attest.ts'
import {
  AttestationError,
  type AttestationEvidence,
  type AttestationResult,
  type AttestationVerifier,
} from './verifiers/verifier.ts'

export interface HardwareVerifiers {
  'apple-appattest': AttestationVerifier
  'android-key': AttestationVerifier
}

/** Every certificate in a PEM file (a bank adds a root Google publishes without waiting for a release). */
function readPemFile(file: string): string[] {
  return readFileSync(file, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
}

/**
 * The verifiers, with Apple's and Google's published roots unless the operator names PEM files of its own. Keys from
 * Apple's development environment are accepted in dev mode only. Android chains are checked against the status list.
 */
export function createHardwareVerifiers(
  config: Pick<Config, 'mode' | 'appleAttestRoots' | 'androidAttestRoots'>,
  statusList?: AttestationStatusList,
) {
  const verifiers: HardwareVerifiers = {
    'apple-appattest': createAppleAppAttestVerifier({
      allowDevelopmentEnvironment: config.mode === 'dev',
      ...(config.appleAttestRoots ? { trustRootsPem: readPemFile(config.appleAttestRoots) } : {}),
    }),
    'android-key': createAndroidKeyAttestationVerifier({
      ...(config.androidAttestRoots ? { trustRootsPem: readPemFile(config.androidAttestRoots) } : {}),
      ...(statusList ? { isRevoked: statusList.isRevoked } : {}),
    }),
  }
  return verifiers
}

/** What verified hardware evidence establishes about the device, over what the app reports. */
export interface HardwareFacts {
  securityLevel: string
  signals: RiskSignals
  /** Android: the versionCode the platform attested for the package. */
  versionCode?: number | undefined
  /** App Attest: the app version the key's attestation covered, which every later claim must repeat. */
  boundAppVersion?: string | undefined
  /** What a platform verdict found beyond the signals (Play Integrity), with the policy's treatment. */
  findings?: IntegrityFinding[]
}

/**
 * What the evidence must cover: the challenge and the app identity the request claims (the SDK's
 * `attestationClientData`), and at enrolment with App Attest the device key being enrolled. A claim other than what
 * the genuine app signed then fails like a wrong challenge. App Attest hashes the client data itself; Android's
 * attestation challenge is its SHA-256.
 */
export function boundClientData(
  input: { challenge: string; appId: string; appVersion: string },
  deviceKey?: { keyThumbprint: string },
) {
  const clientData = attestationClientData(
    input.challenge,
    { appId: input.appId, appVersion: input.appVersion },
    deviceKey,
  )
  return { clientData, digest: createHash('sha256').update(clientData).digest() }
}

/** Audits a device's integrity evidence refused, with the reason code the problem will carry. */
export async function auditRefusedEvidence(
  ctx: Pick<ServerContext, 'db'>,
  device: Pick<DevicePrincipal, 'tenantId' | 'deviceId'>,
  action: 'integrity.attest' | 'integrity.assert',
  reason: string,
  details: Record<string, string> = {},
): Promise<void> {
  await recordAudit(ctx.db, {
    tenantId: device.tenantId,
    actor: { kind: 'device', id: device.deviceId },
    action,
    target: { kind: 'device', id: device.deviceId },
    outcome: 'denied',
    reason,
    details,
  })
}

export async function refuseEvidence(
  ctx: Pick<ServerContext, 'db'>,
  device: Pick<DevicePrincipal, 'tenantId' | 'deviceId'>,
  format: string,
  reason: string,
  claim?: { appId: string; appVersion: string },
): Promise<never> {
  const details = { format, ...(claim ? { appId: claim.appId, appVersion: claim.appVersion } : {}) }
  await auditRefusedEvidence(ctx, device, 'integrity.attest', reason, details)
  throw new Problem('integrity/invalid-evidence', reason)
}

type Attester = Pick<DevicePrincipal, 'tenantId' | 'deviceId'>

/**
 * Runs the platform's verifier on evidence for the app the bank registered, with the challenge the evidence must
 * cover (App Attest hashes the client data itself; Android's attestation challenge is its SHA-256). Refusals are
 * audited with the verifier's reason code.
 */
export async function verifyForRegisteredApp(
  ctx: Pick<ServerContext, 'db'>,
  verifiers: HardwareVerifiers,
  device: Attester,
  input: { evidence: AttestationEvidence; challenge: string; appId: string; appVersion: string },
  deviceKey?: { keyThumbprint: string },
): Promise<AttestationResult> {
  const { evidence } = input
  const app = await expectedApp(ctx, device.tenantId, input.appId)
  if (!app) return refuseEvidence(ctx, device, evidence.format, 'app-not-registered', input)
  const bound = boundClientData(input, deviceKey)
  const challenge = evidence.format === 'android-key' ? bound.digest : bound.clientData
  try {
    return await verifiers[evidence.format].verify({ evidence, challenge, app })
  } catch (error) {
    if (error instanceof AttestationError) return refuseEvidence(ctx, device, evidence.format, error.code, input)
    throw error
  }
}

/**
 * Keeps a device's attested key (one per device: a newer attestation replaces the older), with the version it was
 * attested for: Android's versionCode, or for App Attest the claimed version the attestation covered.
 */
export async function storeAttestation(
  db: ServerContext['db'],
  device: Attester,
  claim: { appId: string; appVersion: string },
  result: AttestationResult,
): Promise<void> {
  const row = {
    format: result.format,
    app_id: claim.appId,
    key_id: result.keyId,
    public_jwk: JSON.stringify(result.publicKeyJwk),
    counter: result.counter ?? 0,
    security_level: result.securityLevel,
    version_code: result.appVersionCode ?? null,
    bound_app_version: result.format === 'apple-appattest' ? claim.appVersion : null,
    attested_at: new Date(),
    asserted_at: null,
  }
  await db
    .insertInto('device_attestations')
    .values({ tenant_id: device.tenantId, device_id: device.deviceId, ...row })
    .onConflict((oc) => oc.columns(['tenant_id', 'device_id']).doUpdateSet(row))
    .execute()
}

/**
 * Verifies an App Attest attestation for the app the bank registered and keeps its key for later assertions.
 * (Android's Keystore attests a key only when it generates it: see android-key.ts for enrolment and re-keying.)
 */
export async function verifyAppAttestEvidence(
  ctx: Pick<ServerContext, 'db'>,
  verifiers: HardwareVerifiers,
  device: DevicePrincipal,
  input: {
    evidence: Extract<AttestationEvidence, { format: 'apple-appattest' }>
    challenge: string
    appId: string
    appVersion: string
    signals: RiskSignals
  },
): Promise<HardwareFacts> {
  const result = await verifyForRegisteredApp(ctx, verifiers, device, input)
  await storeAttestation(ctx.db, device, input, result)
  // Hardware attestation rules out an emulator. Root, debuggers and hooking frameworks are the app's own report: App
  // Attest says nothing of them.
  return {
    securityLevel: result.securityLevel,
    signals: { ...input.signals, emulator: false },
    boundAppVersion: input.appVersion,
  }
}

/**
 * An App Attest assertion over `clientData` by the key attested earlier for this device and app, with a counter above
 * the last one: the counter moves in one conditional update, so a replayed or rolled-back assertion loses even
 * against itself. Answers the stored security level, or the reason for refusing.
 */
export async function acceptAssertion(
  ctx: Pick<ServerContext, 'db'>,
  device: DevicePrincipal,
  input: { assertion: string; clientData: string; appId: string },
): Promise<{ securityLevel: string; boundAppVersion: string | null } | { refused: string }> {
  const stored = await ctx.db
    .selectFrom('device_attestations')
    .selectAll()
    .where('tenant_id', '=', device.tenantId)
    .where('device_id', '=', device.deviceId)
    .where('format', '=', 'apple-appattest')
    .executeTakeFirst()
  const app = await expectedApp(ctx, device.tenantId, input.appId)
  if (!stored || stored.app_id !== input.appId || !app) return { refused: 'not-attested' }
  let counter: number
  try {
    counter = verifyAppAttestAssertion({
      assertion: input.assertion,
      clientData: input.clientData,
      publicKeyJwk: JSON.parse(stored.public_jwk) as JWK,
      app,
      previousCounter: Number(stored.counter),
    }).counter
  } catch (error) {
    if (error instanceof AttestationError) return { refused: error.code }
    throw error
  }
  const advanced = await ctx.db
    .updateTable('device_attestations')
    .set({ counter, asserted_at: new Date() })
    .where('tenant_id', '=', device.tenantId)
    .where('device_id', '=', device.deviceId)
    .where('counter', '<', counter)
    .executeTakeFirst()
  if ((advanced.numUpdatedRows ?? 0n) === 0n) return { refused: 'counter-not-increasing' }
  return { securityLevel: stored.security_level, boundAppVersion: stored.bound_app_version }
}

/**
 * Renewal by an App Attest assertion over the attestation's client data (a fresh challenge, the app's identity). The
 * version claimed must be the one the key was attested for: an app updated since attests a new key, so a switched-off
 * version cannot renew as another.
 */
export async function verifyHardwareAssertion(
  ctx: Pick<ServerContext, 'db'>,
  device: DevicePrincipal,
  input: { assertion: string; challenge: string; appId: string; appVersion: string; signals: RiskSignals },
): Promise<HardwareFacts> {
  const format = 'apple-appattest'
  const clientData = boundClientData(input).clientData
  const accepted = await acceptAssertion(ctx, device, { assertion: input.assertion, clientData, appId: input.appId })
  if ('refused' in accepted) return refuseEvidence(ctx, device, format, accepted.refused, input)
  if (accepted.boundAppVersion === null) return refuseEvidence(ctx, device, format, 'not-attested', input)
  if (accepted.boundAppVersion !== input.appVersion) {
    return refuseEvidence(ctx, device, format, 'app-version-mismatch', input)
  }
  return {
    securityLevel: accepted.securityLevel,
    signals: { ...input.signals, emulator: false },
    boundAppVersion: accepted.boundAppVersion,
  }
}
