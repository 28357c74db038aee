import type { KeyObject } from 'node:crypto'
import { type Static, Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { compactDecrypt, compactVerify } from 'jose'
import { AttestationError } from './verifier.ts'

/**
 * Play Integrity verdicts decrypted and verified on the bank's own server, as Google documents for "decrypt and verify
 * on your own server" (https://developer.android.com/google/play/integrity/classic#decrypt-verify): the token is a
 * JWE (A256KW, A256GCM) under the app's decryption key, holding a JWS (ES256) under its verification key, both from the
 * Play Console.
 */

export interface PlayIntegrityKeys {
  /** The 32-byte AES key the Play Console calls the decryption key. */
  decryptionKey: Uint8Array
  /** The EC P-256 public key the Play Console calls the verification key. */
  verificationKey: KeyObject
}

const Verdicts = Type.Array(Type.String({ maxLength: 100 }), { maxItems: 20 })

/** The verdict's fields read here; Google adds fields over time, and those pass through unread. */
const PlayIntegrityPayload = Type.Object({
  requestDetails: Type.Object({
    requestPackageName: Type.String({ maxLength: 200 }),
    timestampMillis: Type.Union([Type.String({ pattern: '^[0-9]{1,15}$' }), Type.Integer({ minimum: 0 })]),
    nonce: Type.Optional(Type.String({ maxLength: 1000 })),
    requestHash: Type.Optional(Type.String({ maxLength: 1000 })),
  }),
  appIntegrity: Type.Object({
    appRecognitionVerdict: Type.String({ maxLength: 100 }),
    packageName: Type.Optional(Type.String({ maxLength: 200 })),
    certificateSha256Digest: Type.Optional(Verdicts),
    versionCode: Type.Optional(Type.Union([Type.String({ pattern: '^[0-9]{1,15}$' }), Type.Integer({ minimum: 0 })])),
  }),
  deviceIntegrity: Type.Object({ deviceRecognitionVerdict: Type.Optional(Verdicts) }),
  accountDetails: Type.Object({ appLicensingVerdict: Type.String({ maxLength: 100 }) }),
})
type PlayIntegrityPayload = Static<typeof PlayIntegrityPayload>

export interface PlayIntegrityInput {
  token: string
  keys: PlayIntegrityKeys
  /** The registered package and the SHA-256 digests (hex) of the certificates allowed to sign it. */
  app: { packageName: string; signingCertificateSha256: readonly string[] }
  /** What the app put in the request: `requestHash` (standard requests) or `nonce` (classic requests). */
  requestHash: string
  now: Date
  /** How old a verdict may be; the challenge it answers lives two minutes. */
  maxAgeMs?: number
}

export interface PlayIntegrityVerdict {
  /** PLAY_RECOGNIZED, UNRECOGNIZED_VERSION or UNEVALUATED. */
  appRecognition: string
  /** MEETS_BASIC_INTEGRITY, MEETS_DEVICE_INTEGRITY, MEETS_STRONG_INTEGRITY, MEETS_VIRTUAL_INTEGRITY (any of them). */
  device: string[]
  /** LICENSED, UNLICENSED or UNEVALUATED. */
  licensing: string
  versionCode?: number | undefined
}

const DEFAULT_MAX_AGE_MS = 5 * 60_000
const CLOCK_SKEW_MS = 60_000

async function openToken(token: string, keys: PlayIntegrityKeys): Promise<PlayIntegrityPayload> {
  let signed: string
  try {
    const { plaintext } = await compactDecrypt(token, keys.decryptionKey, {
      keyManagementAlgorithms: ['A256KW'],
      contentEncryptionAlgorithms: ['A256GCM'],
    })
    signed = new TextDecoder().decode(plaintext)
  } catch {
    throw new AttestationError('token-undecryptable')
  }
  let payload: unknown
  try {
    const verified = await compactVerify(signed, keys.verificationKey, { algorithms: ['ES256'] })
    payload = JSON.parse(new TextDecoder().decode(verified.payload))
  } catch {
    throw new AttestationError('signature-invalid')
  }
  if (!Value.Check(PlayIntegrityPayload, payload)) throw new AttestationError('bad-format')
  return payload
}

const hexOfDigest = (digest: string) => Buffer.from(digest, 'base64url').toString('hex')

/**
 * Opens and checks a Play Integrity token: it answers this request (its hash), is fresh, and speaks of the bank's
 * package signed with one of the bank's certificates. What it says of the app's recognition, the device and the
 * account is returned for the policy to weigh.
 */
export async function verifyPlayIntegrityToken(input: PlayIntegrityInput): Promise<PlayIntegrityVerdict> {
  const payload = await openToken(input.token, input.keys)
  const { requestDetails, appIntegrity } = payload
  if (requestDetails.requestPackageName !== input.app.packageName) throw new AttestationError('app-id-mismatch')
  const answered = requestDetails.requestHash ?? requestDetails.nonce
  if (answered !== input.requestHash) throw new AttestationError('challenge-mismatch')
  const age = input.now.getTime() - Number(requestDetails.timestampMillis)
  if (age > (input.maxAgeMs ?? DEFAULT_MAX_AGE_MS) || age < -CLOCK_SKEW_MS) throw new AttestationError('token-stale')
  // Google leaves out the package and digests when it does not recognize the app; the verdict then says so.
  if (appIntegrity.packageName !== undefined && appIntegrity.packageName !== input.app.packageName) {
    throw new AttestationError('app-id-mismatch')
  }
  const allowed = new Set(input.app.signingCertificateSha256.map((digest) => digest.replaceAll(':', '').toLowerCase()))
  const digests = (appIntegrity.certificateSha256Digest ?? []).map(hexOfDigest)
  if (!digests.every((digest) => allowed.has(digest))) throw new AttestationError('app-id-mismatch')
  return {
    appRecognition: appIntegrity.appRecognitionVerdict,
    device: payload.deviceIntegrity.deviceRecognitionVerdict ?? [],
    licensing: payload.accountDetails.appLicensingVerdict,
    versionCode: appIntegrity.versionCode === undefined ? undefined : Number(appIntegrity.versionCode),
  }
}
