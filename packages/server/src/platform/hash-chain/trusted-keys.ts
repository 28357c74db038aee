import { createPublicKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { exportJWK, type JWK } from 'jose'

/** Why a trusted-key file cannot be used; the CLI prints the message and exits. */
export class TrustedKeysError extends Error {
  override name = 'TrustedKeysError'
}

/** Checkpoint public keys as a JWKS (RFC 7517): what `strongroom keys export-public` writes for verifiers to pin. */
export async function checkpointKeysJwks(keys: Map<string, KeyObject>): Promise<{ keys: JWK[] }> {
  return {
    keys: await Promise.all(
      [...keys].map(async ([kid, key]) => ({ ...(await exportJWK(key)), kid, alg: 'EdDSA', use: 'sig' })),
    ),
  }
}

/**
 * Reads the checkpoint keys a verifier trusts from a JWKS file kept outside the database (exported when the keys were
 * made). Only Ed25519 keys with a key id are taken: a checkpoint signed by any other key is refused by the walk.
 */
export function readTrustedKeys(file: string): Map<string, KeyObject> {
  let jwks: { keys?: unknown }
  try {
    jwks = JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    throw new TrustedKeysError(`the trusted keys file ${file} cannot be read as JSON`)
  }
  if (!Array.isArray(jwks?.keys)) throw new TrustedKeysError(`the trusted keys file ${file} is not a JWKS`)
  const keys = new Map<string, KeyObject>()
  for (const jwk of jwks.keys as JWK[]) {
    if ('d' in jwk)
      throw new TrustedKeysError(`the trusted keys file ${file} holds a private key: export public keys only`)
    if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.kid !== 'string') continue
    try {
      keys.set(jwk.kid, createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x as string }, format: 'jwk' }))
    } catch {
      throw new TrustedKeysError(`the trusted keys file ${file} has a malformed key ${jwk.kid}`)
    }
  }
  if (keys.size === 0) throw new TrustedKeysError(`the trusted keys file ${file} has no Ed25519 checkpoint key`)
  return keys
}
