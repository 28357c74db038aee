import { generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto'
import { CompactEncrypt, CompactSign } from 'jose'
import { TEST_SIGNING_DIGEST } from './android-chain-builder.ts'

/**
 * Play Integrity tokens as Google's servers make them: a JWS (ES256) with the verdict, encrypted as a JWE (A256KW,
 * A256GCM), with keys a test makes the way the Play Console does (an AES-256 key, an EC P-256 key pair).
 */

export interface PlayIntegrityTestKeys {
  decryptionKey: Uint8Array
  signingKey: KeyObject
  verificationKey: KeyObject
  /** As the Play Console shows them, for registering the app. */
  registration: { decryptionKey: string; verificationKey: string }
}

export function createPlayIntegrityKeys(): PlayIntegrityTestKeys {
  const decryptionKey = new Uint8Array(randomBytes(32))
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return {
    decryptionKey,
    signingKey: privateKey,
    verificationKey: publicKey,
    registration: {
      decryptionKey: Buffer.from(decryptionKey).toString('base64'),
      verificationKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
    },
  }
}

export interface PlayVerdictScenario {
  requestHash: string
  packageName?: string
  timestampMillis?: number
  appRecognition?: string
  digests?: Buffer[]
  device?: string[]
  licensing?: string
  versionCode?: number
}

/** The decrypted payload, shaped as Google documents it for a standard request. */
export function playVerdictPayload(scenario: PlayVerdictScenario): object {
  const packageName = scenario.packageName ?? 'com.bank.app'
  return {
    requestDetails: {
      requestPackageName: packageName,
      timestampMillis: String(scenario.timestampMillis ?? Date.now()),
      requestHash: scenario.requestHash,
    },
    appIntegrity: {
      appRecognitionVerdict: scenario.appRecognition ?? 'PLAY_RECOGNIZED',
      packageName,
      certificateSha256Digest: (scenario.digests ?? [TEST_SIGNING_DIGEST]).map((d) => d.toString('base64url')),
      versionCode: String(scenario.versionCode ?? 320),
    },
    deviceIntegrity: { deviceRecognitionVerdict: scenario.device ?? ['MEETS_DEVICE_INTEGRITY'] },
    accountDetails: { appLicensingVerdict: scenario.licensing ?? 'LICENSED' },
    environmentDetails: { appAccessRiskVerdict: { appsDetected: ['KNOWN_INSTALLED'] } },
  }
}

export async function buildPlayIntegrityToken(
  keys: Pick<PlayIntegrityTestKeys, 'decryptionKey' | 'signingKey'>,
  payload: object,
): Promise<string> {
  const signed = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: 'ES256' })
    .sign(keys.signingKey)
  return new CompactEncrypt(new TextEncoder().encode(signed))
    .setProtectedHeader({ alg: 'A256KW', enc: 'A256GCM' })
    .encrypt(keys.decryptionKey)
}
