import canonicalize from 'canonicalize'
import { CompactSign } from 'jose'
import type { DeviceKeys } from './device-keys.ts'

/** What the app says about where it runs; a bank's policy lowers trust for each of these. */
export interface RiskSignals {
  rooted: boolean
  debugger: boolean
  hooking: boolean
  emulator: boolean
}

export interface AppIdentity {
  appId: string
  appVersion: string
}

/**
 * Turns a server challenge into format-specific evidence from the platform: `{ format: 'apple-appattest',
 * attestationObject, keyId }`, `{ format: 'apple-appattest-assertion', assertion }` (clientData = the challenge) or
 * `{ format: 'android-key', certificateChain }` (the challenge as the key's attestation challenge).
 */
export type AttestationProvider = (challenge: string) => Promise<{ format: string; [field: string]: unknown }>

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
export async function devAttestation(keys: DeviceKeys, challenge: string, app: AppIdentity, signals: RiskSignals) {
  const proof = await new CompactSign(new TextEncoder().encode(devAttestationPayload(challenge, app, signals)))
    .setProtectedHeader({ alg: keys.algorithm, typ: 'strongroom-dev-attestation+jws' })
    .sign(keys.privateKey)
  return { format: 'dev' as const, challenge, ...app, signals, proof }
}
