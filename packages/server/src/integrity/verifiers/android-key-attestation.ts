import type { X509Certificate } from 'node:crypto'
import { calculateJwkThumbprint, type JWK } from 'jose'
import {
  type AttestationApplicationId,
  AuthorizationTag,
  KEY_DESCRIPTION_OID,
  type KeyDescription,
  KeyOrigin,
  KeyPurpose,
  parseAttestationApplicationId,
  parseKeyDescription,
  parsePurposes,
  parseRootOfTrust,
  SecurityLevel,
  VerifiedBootState,
} from './android-key-description.ts'
import { asBytes, bytesEqual, decodeBase64 } from './bytes.ts'
import { parseCertificate, parseTrustRoots, verifyCertificateChain } from './certificate-chain.ts'
import { certificateExtensions } from './certificate-extensions.ts'
import { derSmallInteger } from './der.ts'
import { GOOGLE_HARDWARE_ATTESTATION_ROOTS_PEM } from './trust-roots.ts'
import {
  AttestationError,
  type AttestationInput,
  type AttestationResult,
  type AttestationVerifier,
  type ExpectedApp,
  type HardwareSecurityLevel,
} from './verifier.ts'

/**
 * Android Key Attestation, following "Verify hardware-backed key pairs with key attestation": a chain from the key up
 * to Google's root, and the KeyDescription the secure hardware wrote into the key's certificate.
 */

export interface AndroidKeyAttestationOptions {
  /** PEM trust roots; Google's hardware attestation roots unless a test brings its own. */
  trustRootsPem?: readonly string[]
  /**
   * Google's attestation status list, asked per serial number (lowercase hex, no leading zeros): true for a revoked or
   * suspended certificate. It throws an AttestationError when it cannot answer, and the attestation is refused.
   */
  isRevoked?: (serialNumber: string) => boolean
  /** The clock certificates are checked against. */
  now?: () => Date
}

const HARDWARE_LEVELS = new Map<number, HardwareSecurityLevel>([
  [SecurityLevel.trustedEnvironment, 'trusted-environment'],
  [SecurityLevel.strongBox, 'strongbox'],
])

function normalDigest(hex: string): string {
  return hex.replaceAll(':', '').toLowerCase()
}

/** The leaf certificate alone carries the KeyDescription: one further up means someone extended a real chain. */
function keyDescriptionOf(chainDer: readonly Buffer[]): KeyDescription {
  const [leaf, ...issuers] = chainDer.map(certificateExtensions)
  if (issuers.some((extensions) => extensions.has(KEY_DESCRIPTION_OID))) throw new AttestationError('chain-invalid')
  const value = leaf?.get(KEY_DESCRIPTION_OID)
  if (value === undefined) throw new AttestationError('bad-format')
  return parseKeyDescription(value)
}

function applicationIdOf(description: KeyDescription): AttestationApplicationId {
  const element = description.softwareEnforced.get(AuthorizationTag.attestationApplicationId)
  if (element === undefined) throw new AttestationError('app-id-mismatch')
  return parseAttestationApplicationId(element)
}

/** The package must be among those attested, and every digest it is signed with must be an allowed one. */
function checkApplication(attested: AttestationApplicationId, expected: NonNullable<ExpectedApp['android']>) {
  const allowed = new Set(expected.signingCertificateSha256.map(normalDigest))
  const digests = attested.signatureDigests.map((digest) => digest.toString('hex'))
  const attestedPackage = attested.packages.find((info) => info.name === expected.packageName)
  if (attestedPackage === undefined || digests.length === 0 || !digests.every((digest) => allowed.has(digest))) {
    throw new AttestationError('app-id-mismatch')
  }
  return attestedPackage
}

/**
 * The key must have been generated inside the secure hardware (an imported key may have been copied out of somewhere
 * first), with the hardware enforcing both facts; and it must be a signing key only, as a device key is.
 */
function checkKeyProperties(description: KeyDescription) {
  const origin = description.hardwareEnforced.get(AuthorizationTag.origin)
  if (origin === undefined || derSmallInteger(origin) !== KeyOrigin.generated) {
    throw new AttestationError('key-origin-not-generated')
  }
  const purposeElement = description.hardwareEnforced.get(AuthorizationTag.purpose)
  const purposes = purposeElement === undefined ? [] : parsePurposes(purposeElement)
  const signingOnly = purposes.every((purpose) => purpose === KeyPurpose.sign || purpose === KeyPurpose.verify)
  if (!purposes.includes(KeyPurpose.sign) || !signingOnly) throw new AttestationError('key-purpose-invalid')
}

function optionalInteger(description: KeyDescription, tag: number): number | undefined {
  const element = description.hardwareEnforced.get(tag)
  return element === undefined ? undefined : derSmallInteger(element)
}

export function createAndroidKeyAttestationVerifier(options: AndroidKeyAttestationOptions = {}): AttestationVerifier {
  const trustRoots = parseTrustRoots(options.trustRootsPem ?? GOOGLE_HARDWARE_ATTESTATION_ROOTS_PEM)
  const now = options.now ?? (() => new Date())

  async function verify({ evidence, challenge, app }: AttestationInput): Promise<AttestationResult> {
    if (evidence.format !== 'android-key') throw new AttestationError('bad-format')
    if (app.android === undefined) throw new AttestationError('app-id-mismatch')
    if (!Array.isArray(evidence.certificateChain) || evidence.certificateChain.length < 2) {
      throw new AttestationError('bad-format')
    }
    const chainDer = evidence.certificateChain.map(decodeBase64)
    const chain = chainDer.map(parseCertificate)
    verifyCertificateChain(chain, { trustRoots, at: now(), isRevoked: options.isRevoked })
    const description = keyDescriptionOf(chainDer)

    if (!bytesEqual(description.attestationChallenge, asBytes(challenge))) {
      throw new AttestationError('challenge-mismatch')
    }
    const securityLevel = HARDWARE_LEVELS.get(description.attestationSecurityLevel)
    if (securityLevel === undefined || description.keymasterSecurityLevel !== description.attestationSecurityLevel) {
      throw new AttestationError('security-level-insufficient')
    }
    checkKeyProperties(description)
    const attestedPackage = checkApplication(applicationIdOf(description), app.android)
    const rootOfTrust = description.hardwareEnforced.get(AuthorizationTag.rootOfTrust)
    if (rootOfTrust === undefined) throw new AttestationError('boot-state-unverified')
    const { verifiedBootState, deviceLocked } = parseRootOfTrust(rootOfTrust)
    if (verifiedBootState !== VerifiedBootState.verified || !deviceLocked) {
      throw new AttestationError('boot-state-unverified')
    }

    const leaf = chain[0] as X509Certificate
    const publicKeyJwk = leaf.publicKey.export({ format: 'jwk' }) as JWK
    return {
      format: 'android-key',
      publicKeyJwk,
      keyId: await calculateJwkThumbprint(publicKeyJwk),
      appId: attestedPackage.name,
      securityLevel,
      verifiedBoot: {
        state: 'verified',
        deviceLocked: true,
        osVersion: optionalInteger(description, AuthorizationTag.osVersion),
        osPatchLevel: optionalInteger(description, AuthorizationTag.osPatchLevel),
      },
      appVersionCode: attestedPackage.versionCode,
    }
  }

  return { format: 'android-key', verify }
}
