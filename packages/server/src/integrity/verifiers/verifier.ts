import type { JWK } from 'jose'

/** The app a tenant expects to attest, per platform; a verifier refuses evidence for a platform left out. */
export interface ExpectedApp {
  /** Apple App ID parts: the App ID is `${teamId}.${bundleId}`. */
  apple?: { teamId: string; bundleId: string }
  /** Android package and the SHA-256 digests (hex, colons allowed) of the certificates allowed to sign it. */
  android?: { packageName: string; signingCertificateSha256: readonly string[] }
}

export type AttestationEvidence =
  | {
      format: 'apple-appattest'
      /** The attestation object from DCAppAttestService.attestKey, base64url (or base64). */
      attestationObject: string
      /** The key identifier the app got from DCAppAttestService.generateKey, base64 (or base64url). */
      keyId: string
    }
  | {
      format: 'android-key'
      /** KeyStore.getCertificateChain for the attested key: base64 DER certificates, leaf first. */
      certificateChain: readonly string[]
    }

export interface AttestationInput {
  evidence: AttestationEvidence
  /** The server challenge as issued; a string counts as its UTF-8 bytes. */
  challenge: string | Uint8Array
  app: ExpectedApp
}

/** Where the attested key lives: Apple's Secure Enclave, an Android TEE or an Android StrongBox secure element. */
export type HardwareSecurityLevel = 'secure-enclave' | 'trusted-environment' | 'strongbox'

/** Android's root of trust as the secure hardware saw it at boot; a verifier only returns a verified, locked one. */
export interface VerifiedBootFacts {
  state: 'verified'
  deviceLocked: true
  /** e.g. 140000 for Android 14; absent when the hardware did not report it. */
  osVersion?: number
  /** YYYYMM, e.g. 202405. */
  osPatchLevel?: number
}

export interface AttestationResult {
  format: AttestationEvidence['format']
  /** The attested key, public half. */
  publicKeyJwk: JWK
  /** Apple: the credential id (SHA-256 of the key), base64url. Android: its RFC 7638 JWK thumbprint, as device.jkt. */
  keyId: string
  /** Apple: `${teamId}.${bundleId}`. Android: the package name. */
  appId: string
  securityLevel: HardwareSecurityLevel
  /** Apple only: which App Attest environment produced the key (production unless development was allowed). */
  environment?: 'production' | 'development'
  /** Android only; Apple's attestation vouches for a genuine device and app but reports nothing about its boot. */
  verifiedBoot?: VerifiedBootFacts
  /** Android only: the versionCode of the attested package. */
  appVersionCode?: number
  /** Apple only: the receipt to exchange with Apple for the fraud metric, base64url. */
  receipt?: string
  /** Apple only: the key's signature counter, 0 at attestation; store it and require assertions to exceed it. */
  counter?: number
}

/** Verifies one platform's hardware attestation; it throws an AttestationError for anything it cannot vouch for. */
export interface AttestationVerifier {
  readonly format: AttestationEvidence['format']
  verify(input: AttestationInput): Promise<AttestationResult>
}

const MESSAGES = {
  'bad-format': 'the attestation is malformed',
  'chain-invalid': 'the certificate chain does not verify',
  'certificate-expired': 'a certificate in the chain is outside its validity period',
  'certificate-revoked': 'a certificate in the chain is revoked or suspended',
  'revocation-status-unavailable': 'the attestation status list is not available',
  'root-untrusted': 'the certificate chain does not end at a trusted root',
  'nonce-mismatch': 'the attestation does not cover this challenge',
  'challenge-mismatch': 'the attestation does not cover this challenge',
  'app-id-mismatch': 'the attestation is for another app',
  'key-id-mismatch': 'the attestation is for another key',
  'counter-invalid': 'the attestation counter is invalid',
  'counter-not-increasing': 'the assertion counter did not increase',
  'signature-invalid': 'the signature does not verify',
  'environment-not-allowed': 'the attestation comes from a development environment',
  'security-level-insufficient': 'the key is not held in secure hardware',
  'key-origin-not-generated': 'the key was not generated in secure hardware',
  'key-purpose-invalid': 'the key may be used for more than signing',
  'boot-state-unverified': 'the device did not boot a verified, locked system',
  'token-undecryptable': 'the integrity token does not decrypt with the configured key',
  'token-stale': 'the integrity verdict is not fresh',
  'not-configured': 'the app has no keys registered for this format',
} as const

export type AttestationErrorCode = keyof typeof MESSAGES

/** Every verifier failure: a stable code for the audit log and a fixed message that says nothing about the input. */
export class AttestationError extends Error {
  override readonly name = 'AttestationError'
  constructor(readonly code: AttestationErrorCode) {
    super(MESSAGES[code])
  }
}
