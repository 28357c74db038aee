import type { RiskSignals } from '@strongroom/sdk/integrity'
import { type DevicePrincipal, rotateDeviceKeyIn } from '../identity/devices.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
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
 * Android device attests is attested when it is made: at enrolment (enrolment-attestation.ts) or when an enrolled
 * device re-keys (a device challenge, a new key, the old key signing the request that makes it the device key). Later
 * attestations of the device rest on that record and on the DPoP proof by the same key that every request carries.
 */

const FORMAT = 'android-key'

/** A chain from KeyStore.getCertificateChain, with the app identity its challenge covered. */
interface AndroidKeyEvidence {
  challenge: string
  appId: string
  appVersion: string
  certificateChain: string[]
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
    await storeAttestation(trx, device, evidence, result)
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
