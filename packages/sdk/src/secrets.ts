import { Aes128Gcm, CipherSuite, DhkemP256HkdfSha256, HkdfSha256 } from '@hpke/core'
import type { SealedSecret, SecretsKeyRegistration } from './integrity-protocol.ts'

/**
 * Runtime secrets (API keys the app needs) reach a device sealed with HPKE (RFC 9180): DHKEM(P-256, HKDF-SHA256),
 * HKDF-SHA256, AES-128-GCM, to a P-256 key agreement key the device made for the purpose (never its signing key).
 */
export function runtimeSecretSuite(): CipherSuite {
  return new CipherSuite({ kem: new DhkemP256HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes128Gcm() })
}

/** What the seal binds a secret to: the tenant, its name and version, and the device it was sealed for. */
export function runtimeSecretContext(tenantId: string, name: string, version: number, deviceId: string) {
  const encoder = new TextEncoder()
  return {
    info: encoder.encode(`strongroom runtime secret v1|${tenantId}|${name}|${version}`),
    aad: encoder.encode(`device|${deviceId}`),
  }
}

export interface SecretsKeys {
  privateKey: CryptoKey
  publicKey: CryptoKey
  /** The public half as the server registers it (`POST /v1/integrity/secrets-key`). */
  publicJwk: SecretsKeyRegistration['publicJwk']
}

/**
 * The device's key for receiving secrets: P-256 ECDH made with WebCrypto, the private half non-extractable. Keep the
 * pair (IndexedDB in browsers); register the public half with `client.registerSecretsKey`.
 */
export async function generateSecretsKeys(): Promise<SecretsKeys> {
  const pair = (await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, [
    'deriveBits',
  ])) as CryptoKeyPair
  const { x, y } = await crypto.subtle.exportKey('jwk', pair.publicKey)
  return {
    privateKey: pair.privateKey,
    publicKey: pair.publicKey,
    publicJwk: { kty: 'EC', crv: 'P-256', x: x as string, y: y as string },
  }
}

export type { SealedSecret }

const fromBase64Url = (value: string) => {
  const binary = atob(value.replace(/-/g, '+').replace(/_/g, '/'))
  return Uint8Array.from(binary, (c) => c.charCodeAt(0))
}

/** Opens a delivered secret with the device's secrets key; throws if it was altered or sealed for another device. */
export async function openRuntimeSecret(keys: SecretsKeys, sealed: SealedSecret): Promise<Uint8Array> {
  const { info, aad } = runtimeSecretContext(sealed.tenantId, sealed.name, sealed.version, sealed.deviceId)
  const suite = runtimeSecretSuite()
  const plaintext = await suite.open(
    {
      // The pair, not the private key alone: HPKE binds the recipient's public key into the key schedule, and a
      // non-extractable private key cannot give it back.
      recipientKey: { privateKey: keys.privateKey, publicKey: keys.publicKey },
      enc: fromBase64Url(sealed.enc).buffer as ArrayBuffer,
      info: info.buffer as ArrayBuffer,
    },
    fromBase64Url(sealed.ciphertext).buffer as ArrayBuffer,
    aad.buffer as ArrayBuffer,
  )
  return new Uint8Array(plaintext)
}
