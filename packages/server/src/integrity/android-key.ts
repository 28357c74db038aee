import { randomBytes } from 'node:crypto'
import type { RiskSignals } from '@strongroom/sdk/integrity'
import {
  type DevicePrincipal,
  type EnrolmentAttestation,
  type EnrolmentAttestationEvidence,
  rotateDeviceKeyIn,
} from '../identity/devices.ts'
import { pendingEnrolment } from '../identity/enrolment-codes.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { secretHash } from '../platform/ids.ts'
import { consumeChallenge } from './challenges.ts'
import {
  type HardwareFacts,
  type HardwareVerifiers,
  refuseEvidence,
  storeAttestation,
  verifyForRegisteredApp,
} from './hardware-attestation.ts'

/*
 * Android's Keystore attests a key once, when it generates it, with the challenge the app gives then. So the key an
 * Android device attests is attested when it is made: at enrolment (the enrolment code obtains a challenge, the app
 * generates its device key with it and enrols that key with its chain) or when an enrolled device re-keys (a device
 * challenge, a new key, the old key signing the request that makes it the device key). Later attestations of the
 * device rest on that record and on the DPoP proof by the same key that every request carries.
 */

const FORMAT = 'android-key'
const CHALLENGE_TTL_SECONDS = 300

/** A chain from KeyStore.getCertificateChain, with the app identity its challenge covered. */
interface AndroidKeyEvidence {
  challenge: string
  appId: string
  appVersion: string
  certificateChain: string[]
}

/** A single-use challenge for the key an app is about to generate and enrol with this enrolment code. */
export async function issueEnrolmentChallenge(ctx: Pick<ServerContext, 'db'>, enrolmentCode: string) {
  const pending = await pendingEnrolment(ctx, enrolmentCode)
  if (!pending) throw new Problem('identity/invalid-enrolment-code')
  const challenge = randomBytes(32).toString('base64url')
  const expiresAt = new Date(Date.now() + CHALLENGE_TTL_SECONDS * 1000)
  await ctx.db
    .insertInto('enrolment_challenges')
    .values({
      challenge_hash: secretHash(challenge),
      tenant_id: pending.tenantId,
      device_id: pending.deviceId,
      expires_at: expiresAt,
      used_at: null,
    })
    .execute()
  return { challenge, expiresAt: expiresAt.toISOString() }
}

/** The chain verified for the registered app, and its key required to be `jkt` (the key the request proves). */
async function verifyAndroidKey(
  ctx: Pick<ServerContext, 'db'>,
  verifiers: HardwareVerifiers,
  device: Pick<DevicePrincipal, 'tenantId' | 'deviceId'>,
  input: AndroidKeyEvidence,
  jkt: string,
) {
  const evidence = { format: FORMAT, certificateChain: input.certificateChain } as const
  const result = await verifyForRegisteredApp(ctx, verifiers, device, { ...input, evidence })
  // The attested key must be the key that signs this request, or the attestation proves nothing about it.
  if (result.keyId !== jkt) return refuseEvidence(ctx, device, FORMAT, 'key-id-mismatch', input)
  return result
}

/**
 * The check enrolment runs on an Android chain (identity's `EnrolmentAttestation`): the challenge must be one an
 * enrolment code obtained and not used, the chain must verify for the registered app and attest the DPoP key being
 * enrolled. Inside the enrolment's transaction the challenge is used up, and must have been obtained with the same
 * code; the attestation is kept as the device's.
 */
export function androidEnrolmentAttestation(
  ctx: Pick<ServerContext, 'db'>,
  verifiers: HardwareVerifiers,
): EnrolmentAttestation {
  return async (proof, evidence: EnrolmentAttestationEvidence) => {
    const hash = secretHash(evidence.challenge)
    const issued = await ctx.db
      .selectFrom('enrolment_challenges')
      .select(['tenant_id', 'device_id'])
      .where('challenge_hash', '=', hash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', new Date())
      .executeTakeFirst()
    if (!issued) throw new Problem('integrity/invalid-evidence', 'the challenge is unknown, used or expired')
    const device = { tenantId: issued.tenant_id, deviceId: issued.device_id }
    const result = await verifyAndroidKey(ctx, verifiers, device, evidence, proof.jkt)
    return async (trx, enrolled) => {
      const used = await trx
        .updateTable('enrolment_challenges')
        .set({ used_at: new Date() })
        .where('challenge_hash', '=', hash)
        .where('tenant_id', '=', enrolled.tenantId)
        .where('device_id', '=', enrolled.deviceId)
        .where('used_at', 'is', null)
        .executeTakeFirst()
      if ((used.numUpdatedRows ?? 0n) === 0n) {
        throw new Problem('integrity/invalid-evidence', 'the challenge is used or was issued for another enrolment')
      }
      await storeAttestation(trx, enrolled, evidence.appId, result)
    }
  }
}

/**
 * Re-keying: an enrolled Android device generates a new key with a device challenge as its attestation challenge and
 * sends the chain in a request its current key signs. The challenge is used up, the new key becomes the device key
 * (the old key's tokens end) and its attestation the device's, in one transaction. Answers the new key's token; the
 * new key proves itself with the DPoP proof of every request after.
 */
export async function rekeyAndroidDevice(
  ctx: Pick<ServerContext, 'db' | 'config'>,
  verifiers: HardwareVerifiers,
  device: DevicePrincipal,
  evidence: AndroidKeyEvidence,
) {
  const result = await verifyForRegisteredApp(ctx, verifiers, device, {
    ...evidence,
    evidence: { format: FORMAT, certificateChain: evidence.certificateChain },
  })
  if (result.keyId === device.jkt) return refuseEvidence(ctx, device, FORMAT, 'key-unchanged', evidence)
  return ctx.db.transaction().execute(async (trx) => {
    if (!(await consumeChallenge({ db: trx }, device.tenantId, device.deviceId, evidence.challenge))) {
      throw new Problem('integrity/invalid-evidence', 'the challenge is unknown, used or expired')
    }
    const token = await rotateDeviceKeyIn(ctx, trx, device, {
      jwk: result.publicKeyJwk,
      jkt: result.keyId,
      reason: 'android-key-attestation',
    })
    await storeAttestation(trx, device, evidence.appId, result)
    return { token, keyThumbprint: result.keyId, versionCode: result.appVersionCode }
  })
}

/**
 * An Android device's attestation for an integrity token: the key attested at enrolment or re-keying must be the key
 * this request's DPoP proof was made with, for the app claimed. What the hardware vouched for then (the package's
 * versionCode, verified boot) is what the policy sees; an app updated since re-keys to have its new versionCode
 * attested.
 */
export async function verifyAndroidAttestedDevice(
  ctx: Pick<ServerContext, 'db'>,
  device: DevicePrincipal,
  input: { challenge: string; appId: string; appVersion: string; signals: RiskSignals },
): Promise<HardwareFacts> {
  const stored = await ctx.db
    .selectFrom('device_attestations')
    .select(['app_id', 'key_id', 'security_level', 'version_code'])
    .where('tenant_id', '=', device.tenantId)
    .where('device_id', '=', device.deviceId)
    .where('format', '=', FORMAT)
    .executeTakeFirst()
  if (!stored || stored.key_id !== device.jkt || stored.app_id !== input.appId) {
    return refuseEvidence(ctx, device, FORMAT, 'not-attested', input)
  }
  // The Keystore's verified, locked boot rules out a rooted device and an emulator; debuggers and hooking frameworks
  // are the app's own report.
  return {
    securityLevel: stored.security_level,
    signals: { ...input.signals, rooted: false, emulator: false },
    versionCode: stored.version_code ?? undefined,
  }
}
