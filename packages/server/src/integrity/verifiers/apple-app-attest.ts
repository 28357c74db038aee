import { createPublicKey, verify as verifySignature, type X509Certificate } from 'node:crypto'
import { Decoder } from 'cbor-x'
import type { JWK } from 'jose'
import { asBytes, bytesEqual, decodeBase64, sha256 } from './bytes.ts'
import { parseCertificate, parseTrustRoots, verifyCertificateChain } from './certificate-chain.ts'
import { certificateExtensions } from './certificate-extensions.ts'
import { DER_OCTET_STRING, DER_SEQUENCE, derChildren, derOctetString, expectDer, readDer } from './der.ts'
import { APPLE_APP_ATTESTATION_ROOT_CA_PEM } from './trust-roots.ts'
import {
  AttestationError,
  type AttestationInput,
  type AttestationResult,
  type AttestationVerifier,
  type ExpectedApp,
} from './verifier.ts'

/**
 * Apple App Attest, following "Validating apps that connect to your server": the attestation at key creation, then
 * assertions signed with the attested key.
 */

const NONCE_EXTENSION_OID = '1.2.840.113635.100.8.2'
const PRODUCTION_AAGUID = Buffer.from('appattest\0\0\0\0\0\0\0', 'latin1')
const DEVELOPMENT_AAGUID = Buffer.from('appattestdevelop', 'latin1')
// Maps decode as Map, so keys such as __proto__ stay data.
const cbor = new Decoder({ mapsAsObjects: false })

export interface AppleAppAttestOptions {
  /** PEM trust roots; Apple's App Attestation Root CA unless a test brings its own. */
  trustRootsPem?: readonly string[]
  /** Accept keys made in the development environment (`appattestdevelop`); production servers leave this off. */
  allowDevelopmentEnvironment?: boolean
  /** The clock certificates are checked against. */
  now?: () => Date
}

function malformed(): never {
  throw new AttestationError('bad-format')
}

function decodeCborMap(base64: string): Map<unknown, unknown> {
  let value: unknown
  try {
    value = cbor.decode(decodeBase64(base64))
  } catch (error) {
    if (error instanceof AttestationError) throw error
    malformed()
  }
  return value instanceof Map ? value : malformed()
}

function bytesValue(value: unknown): Buffer {
  return value instanceof Uint8Array ? Buffer.from(value) : malformed()
}

interface AuthenticatorData {
  rpIdHash: Buffer
  counter: number
  aaguid?: Buffer
  credentialId?: Buffer
}

/**
 * WebAuthn authenticator data: rpIdHash(32) flags(1) counter(4), then for an attestation aaguid(16) idLength(2)
 * credentialId. Apple sets the attested-credential flag on assertions too, so the caller says which it expects.
 */
function parseAuthenticatorData(bytes: Buffer, withCredential: boolean): AuthenticatorData {
  if (bytes.length < 37) malformed()
  const parsed = { rpIdHash: bytes.subarray(0, 32), counter: bytes.readUInt32BE(33) }
  if (!withCredential) return parsed
  if (bytes.length < 55) malformed()
  const idLength = bytes.readUInt16BE(53)
  if (bytes.length < 55 + idLength) malformed()
  return { ...parsed, aaguid: bytes.subarray(37, 53), credentialId: bytes.subarray(55, 55 + idLength) }
}

function appleAppId(app: ExpectedApp): string {
  if (app.apple === undefined) throw new AttestationError('app-id-mismatch')
  return `${app.apple.teamId}.${app.apple.bundleId}`
}

/** The nonce extension holds SEQUENCE { [1] EXPLICIT OCTET STRING }. */
function attestedNonce(leafDer: Buffer): Buffer {
  const value = certificateExtensions(leafDer).get(NONCE_EXTENSION_OID) ?? malformed()
  const [tagged, ...rest] = derChildren(expectDer(readDer(value), DER_SEQUENCE))
  if (rest.length > 0) malformed()
  const [nonce, ...more] = derChildren(expectDer(tagged, 1, 'context'))
  if (more.length > 0) malformed()
  return derOctetString(expectDer(nonce, DER_OCTET_STRING))
}

/** App Attest keys are P-256; Apple's key id is the SHA-256 of the uncompressed point. */
function credentialKey(leaf: X509Certificate): { jwk: JWK; keyHash: Buffer } {
  const jwk = leaf.publicKey.export({ format: 'jwk' }) as JWK
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || jwk.x === undefined || jwk.y === undefined) malformed()
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')])
  return { jwk, keyHash: sha256(point) }
}

function environmentOf(aaguid: Buffer | undefined): 'production' | 'development' {
  if (aaguid !== undefined && bytesEqual(aaguid, PRODUCTION_AAGUID)) return 'production'
  if (aaguid !== undefined && bytesEqual(aaguid, DEVELOPMENT_AAGUID)) return 'development'
  return malformed()
}

export function createAppleAppAttestVerifier(options: AppleAppAttestOptions = {}): AttestationVerifier {
  const trustRoots = parseTrustRoots(options.trustRootsPem ?? [APPLE_APP_ATTESTATION_ROOT_CA_PEM])
  const now = options.now ?? (() => new Date())

  async function verify({ evidence, challenge, app }: AttestationInput): Promise<AttestationResult> {
    if (evidence.format !== 'apple-appattest') malformed()
    const appId = appleAppId(app)
    const attestation = decodeCborMap(evidence.attestationObject)
    if (attestation.get('fmt') !== 'apple-appattest') malformed()
    const statement = attestation.get('attStmt')
    if (!(statement instanceof Map)) malformed()
    const x5c = statement.get('x5c')
    if (!Array.isArray(x5c) || x5c.length < 2) malformed()
    const chainDer = x5c.map(bytesValue)
    const receipt = bytesValue(statement.get('receipt'))
    const authDataBytes = bytesValue(attestation.get('authData'))
    const authData = parseAuthenticatorData(authDataBytes, true)

    // 1. The chain: credential certificate, intermediate, up to Apple's root.
    const chain = chainDer.map(parseCertificate)
    verifyCertificateChain(chain, { trustRoots, at: now() })
    const leaf = chain[0] as X509Certificate
    const leafDer = chainDer[0] as Buffer
    // 2-4. The leaf certifies SHA-256(authData || SHA-256(challenge)): this key, this challenge, this authData.
    const nonce = sha256(authDataBytes, sha256(asBytes(challenge)))
    if (!bytesEqual(attestedNonce(leafDer), nonce)) throw new AttestationError('nonce-mismatch')
    // 5. The key the app names is the certified key.
    const { jwk, keyHash } = credentialKey(leaf)
    if (!bytesEqual(decodeBase64(evidence.keyId), keyHash)) throw new AttestationError('key-id-mismatch')
    // 6. The key belongs to this App ID.
    if (!bytesEqual(authData.rpIdHash, sha256(Buffer.from(appId, 'utf8')))) {
      throw new AttestationError('app-id-mismatch')
    }
    // 7. A fresh key has signed nothing yet.
    if (authData.counter !== 0) throw new AttestationError('counter-invalid')
    // 8. Production or development App Attest.
    const environment = environmentOf(authData.aaguid)
    if (environment === 'development' && !options.allowDevelopmentEnvironment) {
      throw new AttestationError('environment-not-allowed')
    }
    // 9. The credential in authData is the same key.
    if (authData.credentialId === undefined || !bytesEqual(authData.credentialId, keyHash)) {
      throw new AttestationError('key-id-mismatch')
    }
    return {
      format: 'apple-appattest',
      publicKeyJwk: jwk,
      keyId: keyHash.toString('base64url'),
      appId,
      securityLevel: 'secure-enclave',
      environment,
      receipt: receipt.toString('base64url'),
      counter: authData.counter,
    }
  }

  return { format: 'apple-appattest', verify }
}

export interface AppAttestAssertionInput {
  /** The assertion from DCAppAttestService.generateAssertion, base64url (or base64). */
  assertion: string
  /** The exact request bytes the app hashed into clientDataHash; it should carry a fresh server challenge. */
  clientData: string | Uint8Array
  /** The key the attestation returned. */
  publicKeyJwk: JWK
  app: ExpectedApp
  /** The counter stored from the attestation or the last accepted assertion. */
  previousCounter: number
}

/**
 * Verifies an assertion: the attested key signed SHA-256(authenticatorData || SHA-256(clientData)) for this App ID,
 * with a counter above the stored one. The caller stores the returned counter.
 */
export function verifyAppAttestAssertion(input: AppAttestAssertionInput): { counter: number } {
  const appId = appleAppId(input.app)
  const assertion = decodeCborMap(input.assertion)
  const signature = bytesValue(assertion.get('signature'))
  const authDataBytes = bytesValue(assertion.get('authenticatorData'))
  const authData = parseAuthenticatorData(authDataBytes, false)
  let key: ReturnType<typeof createPublicKey>
  try {
    key = createPublicKey({ key: { ...input.publicKeyJwk }, format: 'jwk' })
  } catch {
    malformed()
  }
  // The key signs the nonce itself with ECDSA-SHA256, so the nonce is hashed once more (checked on a real device).
  const nonce = sha256(authDataBytes, sha256(asBytes(input.clientData)))
  let valid = false
  try {
    valid = verifySignature('sha256', nonce, key, signature)
  } catch {
    valid = false
  }
  if (!valid) throw new AttestationError('signature-invalid')
  if (!bytesEqual(authData.rpIdHash, sha256(Buffer.from(appId, 'utf8')))) throw new AttestationError('app-id-mismatch')
  if (authData.counter <= input.previousCounter) throw new AttestationError('counter-not-increasing')
  return { counter: authData.counter }
}
