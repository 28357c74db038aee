import { base64url, SignJWT } from 'jose'
import type { DeviceKeys } from './device-keys.ts'
import { randomId } from './encoding.ts'

/**
 * A DPoP proof (RFC 9449) for one request: signed by the device key, naming the method and URL, and bound to the
 * access token through its hash when one is sent.
 *
 * @example
 * const proof = await createDpopProof(keys, { htm: 'POST', htu: 'https://bank.example/v1/devices/token' })
 */
export async function createDpopProof(
  keys: DeviceKeys,
  request: { htm: string; htu: string; accessToken?: string | undefined },
): Promise<string> {
  const url = new URL(request.htu)
  url.search = ''
  url.hash = ''
  const claims: Record<string, unknown> = { htm: request.htm, htu: url.href, jti: randomId() }
  if (request.accessToken) {
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(request.accessToken))
    claims.ath = base64url.encode(new Uint8Array(digest))
  }
  return new SignJWT(claims)
    .setProtectedHeader({ alg: keys.algorithm, typ: 'dpop+jwt', jwk: keys.publicJwk })
    .setIssuedAt()
    .sign(keys.privateKey)
}
