import canonicalize from 'canonicalize'
import { CompactSign } from 'jose'
import type { DeviceKeys } from './device-keys.ts'
import type { AttestationEvidence } from './integrity-protocol.ts'

/** What the app says about where it runs; a bank's policy lowers trust for each of these. */
export type RiskSignals = AttestationEvidence['signals']

export type AppIdentity = Pick<AttestationEvidence, 'appId' | 'appVersion'>

/** What the platform proves, per format: the attestation evidence without the fields every format carries. */
export type PlatformEvidence = AttestationEvidence extends infer E
  ? E extends AttestationEvidence
    ? Omit<E, 'challenge' | 'appId' | 'appVersion' | 'signals'>
    : never
  : never

/**
 * Turns the client data of an attestation (see `attestationClientData`) into format-specific evidence from the
 * platform, each covering SHA-256(clientData) computed natively: `{ format: 'apple-appattest', attestationObject, keyId }`
 * (the hash as `clientDataHash` of `attestKey`), `{ format: 'apple-appattest-assertion', assertion }` (the same, for
 * `generateAssertion`), `{ format: 'play-integrity', token }` (the hash, base64url, as the request hash) or
 * `{ format: 'android-key' }`: Android's Keystore attests a key only when it generates it, so the device key's chain
 * goes with the enrolment (`enrolDevice`'s `attestation`) or a re-key (`POST /v1/integrity/rekey`), and an attestation
 * afterwards rests on that record and the request's DPoP proof by the same key.
 */
export type AttestationProvider = (clientData: string, challenge: string) => Promise<PlatformEvidence>

/**
 * Android: the native layer generates a new Keystore key (P-256, signing only, in the TEE or StrongBox) with
 * SHA-256 of `clientData`'s UTF-8 bytes as its attestation challenge (`setAttestationChallenge`), and gives back the
 * key as `DeviceKeys` and `KeyStore.getCertificateChain` of it (base64 DER, leaf first).
 */
export type AttestedKeyGenerator = (
  clientData: string,
  challenge: string,
) => Promise<{ keys: DeviceKeys; certificateChain: string[] }>

/**
 * Apple: the native layer makes a fresh App Attest key (`DCAppAttestService.generateKey`) and attests it with SHA-256
 * of `clientData`'s UTF-8 bytes as `clientDataHash` (`attestKey`), giving back the attestation object and key id
 * (base64). Keep the key id: assertions on renewal are made with it.
 */
export type AppAttestKeyAttester = (
  clientData: string,
  challenge: string,
) => Promise<{ attestationObject: string; keyId: string }>

/**
 * What a hardware attestation covers: the server's challenge and the app's identity as the genuine app knows it, and
 * at enrolment with App Attest the RFC 7638 thumbprint of the device key being enrolled (App Attest's key is not the
 * device key, so the attestation names it). The server recomputes it from the version the app claims, so the version
 * the gate and the version switch use is the one the attested app signed, not a claim made afterwards. Native code
 * hashes these UTF-8 bytes with SHA-256.
 *
 * @example
 * attestationClientData('c2VydmVy…', { appId: 'com.bank.app', appVersion: '3.2.0' })
 * // '{"appId":"com.bank.app","appVersion":"3.2.0","challenge":"c2VydmVy…","type":"strongroom-attestation/v1"}'
 */
export function attestationClientData(
  challenge: string,
  app: AppIdentity,
  deviceKey?: { keyThumbprint: string },
): string {
  return canonicalize({
    type: 'strongroom-attestation/v1',
    challenge,
    appId: app.appId,
    appVersion: app.appVersion,
    ...(deviceKey ? { deviceKey: deviceKey.keyThumbprint } : {}),
  }) as string
}

/** The dev attestation: the device key signs the challenge, the app identity and its signals (no hardware claim). */
export function devAttestationPayload(challenge: string, app: AppIdentity, signals: RiskSignals): string {
  return canonicalize({
    type: 'strongroom-dev-attestation/v1',
    challenge,
    appId: app.appId,
    appVersion: app.appVersion,
    signals: {
      rooted: signals.rooted,
      debugger: signals.debugger,
      hooking: signals.hooking,
      emulator: signals.emulator,
    },
  }) as string
}

/**
 * Evidence from the dev attestation provider, for development and tests: a dev server accepts it, a production server
 * refuses it. Native apps plug in App Attest or Key Attestation providers instead.
 */
export async function devAttestation(
  keys: DeviceKeys,
  challenge: string,
  app: AppIdentity,
  signals: RiskSignals,
): Promise<AttestationEvidence> {
  const proof = await new CompactSign(new TextEncoder().encode(devAttestationPayload(challenge, app, signals)))
    .setProtectedHeader({ alg: keys.algorithm, typ: 'strongroom-dev-attestation+jws' })
    .sign(keys.privateKey)
  return { format: 'dev' as const, challenge, ...app, signals, proof }
}
