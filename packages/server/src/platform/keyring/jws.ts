import type { SigningKey } from './signing-keys.ts'

/** The JWS `alg` (RFC 7518, RFC 8037) of what a key signs. */
export function jwsAlgorithm(key: Pick<SigningKey, 'algorithm'>): 'EdDSA' | 'ES256' {
  return key.algorithm === 'ed25519' ? 'EdDSA' : 'ES256'
}

/**
 * A compact JWS (RFC 7515) over `payload`, signed by the key provider's signer: the private key never comes into this
 * process when it lives in an HSM. The protected header gets the key's `alg` and `kid`.
 */
export function signCompactJws(key: SigningKey, header: Record<string, unknown>, payload: Uint8Array): string {
  const encodedHeader = Buffer.from(JSON.stringify({ ...header, alg: jwsAlgorithm(key), kid: key.id })).toString(
    'base64url',
  )
  const signingInput = `${encodedHeader}.${Buffer.from(payload).toString('base64url')}`
  return `${signingInput}.${key.sign(Buffer.from(signingInput, 'ascii')).toString('base64url')}`
}

/** A JWT (RFC 7519) of these claims, typed `typ`, issued now unless the claims say when. */
export function signJwt(key: SigningKey, typ: string, claims: Record<string, unknown>): string {
  const payload = { iat: Math.floor(Date.now() / 1000), ...claims }
  return signCompactJws(key, { typ }, Buffer.from(JSON.stringify(payload), 'utf8'))
}
