import { exportJWK, type JWK } from 'jose'

export type DeviceKeyAlgorithm = 'ES256' | 'EdDSA'

/** A device's key pair. The private key is made non-extractable: it can sign, and it can never be read out. */
export interface DeviceKeys {
  algorithm: DeviceKeyAlgorithm
  privateKey: CryptoKey
  publicKey: CryptoKey
  publicJwk: JWK
}

/**
 * Makes a new device key pair with WebCrypto: P-256 (ES256) by default, as secure hardware offers it; Ed25519 where
 * the platform has it.
 *
 * @example
 * const keys = await generateDeviceKeys()
 */
export async function generateDeviceKeys(algorithm: DeviceKeyAlgorithm = 'ES256'): Promise<DeviceKeys> {
  const params = algorithm === 'ES256' ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'Ed25519' }
  const pair = (await crypto.subtle.generateKey(params, false, ['sign', 'verify'])) as CryptoKeyPair
  const { kty, crv, x, y } = await exportJWK(pair.publicKey)
  const publicJwk: JWK = y === undefined ? { kty, crv, x } : { kty, crv, x, y }
  return { algorithm, privateKey: pair.privateKey, publicKey: pair.publicKey, publicJwk }
}
