import { calculateJwkThumbprint } from 'jose'
import { type EnrolledDevice, type EnrolOptions, enrolDevice } from './client.ts'
import { generateDeviceKeys } from './device-keys.ts'
import {
  type AppAttestKeyAttester,
  type AppIdentity,
  type AttestedKeyGenerator,
  attestationClientData,
} from './integrity.ts'
import { postWithoutCredentials } from './public-request.ts'

/** Where the enrolment's hardware evidence comes from: the native layer of an Android or an iOS app. */
export type EnrolmentEvidenceSource =
  | { platform: 'android'; generateAttestedKey: AttestedKeyGenerator }
  | { platform: 'apple'; attestKey: AppAttestKeyAttester }

/**
 * Enrols this device with hardware evidence of its key, in one call: fetches the enrolment challenge for the code
 * (`POST /v1/integrity/enrolment-challenges`), has the native layer make the evidence over its client data, and enrols
 * (`POST /v1/devices`) with it. Android: the Keystore generates the device key with the client data's SHA-256 as its
 * attestation challenge, and that key is enrolled. iOS: the device key is made here (or given as `keys`) and a fresh
 * App Attest key attests client data naming its thumbprint. A bank whose policy says `attestEnrolment` refuses an
 * enrolment without evidence (`integrity/attestation-required`).
 *
 * @example
 * const { client } = await enrolAttestedDevice({
 *   baseUrl, enrolmentCode, label: 'Pixel 8', app: { appId: 'com.bank.app', appVersion: '3.2.0' },
 *   evidence: { platform: 'android', generateAttestedKey: nativeKeystore.generateAttestedKey },
 * })
 */
export async function enrolAttestedDevice(
  options: EnrolOptions & { enrolmentCode: string; app: AppIdentity; evidence: EnrolmentEvidenceSource },
): Promise<EnrolledDevice> {
  const { app, evidence, enrolmentCode } = options
  const baseUrl = (Array.isArray(options.baseUrl) ? options.baseUrl[0] : options.baseUrl) ?? ''
  const { challenge } = await postWithoutCredentials(
    { baseUrl, ...(options.fetch ? { fetch: options.fetch } : {}) },
    'POST /v1/integrity/enrolment-challenges',
    { enrolmentCode },
  )
  if (evidence.platform === 'android') {
    const { keys, certificateChain } = await evidence.generateAttestedKey(
      attestationClientData(challenge, app),
      challenge,
    )
    const attestation = { format: 'android-key' as const, challenge, ...app, certificateChain }
    return enrolDevice({ ...options, keys, attestation })
  }
  const keys = options.keys ?? (await generateDeviceKeys(options.algorithm))
  const keyThumbprint = await calculateJwkThumbprint(keys.publicJwk)
  const attested = await evidence.attestKey(attestationClientData(challenge, app, { keyThumbprint }), challenge)
  const attestation = { format: 'apple-appattest' as const, challenge, ...app, ...attested }
  return enrolDevice({ ...options, keys, attestation })
}
