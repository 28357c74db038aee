import { createPublicKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { exportJWK, type JWK } from 'jose'

/** Why a trusted-key file cannot be used; the CLI prints the message and exits. */
export class TrustedKeysError extends Error {
  override name = 'TrustedKeysError'
}

/** A trusted checkpoint key, and the bank whose chains it may sign (none: the deployment's key, for every chain). */
export interface TrustedKey {
  key: KeyObject
  tenantId: string | undefined
}

/**
 * Checkpoint public keys as a JWKS (RFC 7517): what `strongroom keys export-public` writes for verifiers to pin. A
 * bank's key carries the bank's id in `tid`, so that verification accepts it on that bank's chains only.
 */
export async function checkpointKeysJwks(keys: Map<string, TrustedKey>): Promise<{ keys: JWK[] }> {
  return {
    keys: await Promise.all(
      [...keys].map(async ([kid, { key, tenantId }]) => ({
        ...(await exportJWK(key)),
        kid,
        alg: 'EdDSA',
        use: 'sig',
        ...(tenantId === undefined ? {} : { tid: tenantId }),
      })),
    ),
  }
}

/** The keys that may sign one chain's checkpoints: the bank's own and the deployment's, never another bank's. */
export function trustedKeysFor(keys: Map<string, TrustedKey>, tenantId: string): Map<string, KeyObject> {
  return new Map(
    [...keys].filter(([, k]) => k.tenantId === undefined || k.tenantId === tenantId).map(([kid, k]) => [kid, k.key]),
  )
}

/**
 * Reads the checkpoint keys a verifier trusts from a JWKS file kept outside the database (exported when the keys were
 * made). Only Ed25519 keys with a key id are taken: a checkpoint signed by any other key is refused by the walk.
 */
export function readTrustedKeys(file: string): Map<string, TrustedKey> {
  let jwks: { keys?: unknown }
  try {
    jwks = JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    throw new TrustedKeysError(`the trusted keys file ${file} cannot be read as JSON`)
  }
  if (!Array.isArray(jwks?.keys)) throw new TrustedKeysError(`the trusted keys file ${file} is not a JWKS`)
  const keys = new Map<string, TrustedKey>()
  for (const jwk of jwks.keys as (JWK & { tid?: unknown })[]) {
    if ('d' in jwk)
      throw new TrustedKeysError(`the trusted keys file ${file} holds a private key: export public keys only`)
    if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.kid !== 'string') continue
    try {
      const key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x as string }, format: 'jwk' })
      keys.set(jwk.kid, { key, tenantId: typeof jwk.tid === 'string' ? jwk.tid : undefined })
    } catch {
      throw new TrustedKeysError(`the trusted keys file ${file} has a malformed key ${jwk.kid}`)
    }
  }
  if (keys.size === 0) throw new TrustedKeysError(`the trusted keys file ${file} has no Ed25519 checkpoint key`)
  return keys
}
