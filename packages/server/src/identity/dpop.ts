import { createHash } from 'node:crypto'
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, type JWK, jwtVerify } from 'jose'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'

/**
 * The device key algorithms Strongroom accepts: P-256 (what secure hardware offers) and Ed25519, under either of its
 * names: `EdDSA`, and the fully specified `Ed25519` of RFC 9864 that newer clients send.
 */
export const DEVICE_KEY_ALGORITHMS = ['ES256', 'EdDSA', 'Ed25519'] as const
/** The algorithms a verifier accepts for a device's public key: one for P-256, both names for Ed25519. */
export function algorithmsForKey(jwk: Pick<JWK, 'kty'>): string[] {
  return jwk.kty === 'OKP' ? ['EdDSA', 'Ed25519'] : ['ES256']
}
/** How far a proof's iat may stray from the server clock, in either direction. */
const IAT_WINDOW_SECONDS = 60
/**
 * How long after its iat a proof may still pass: the window behind the clock, plus the tolerance, plus the second
 * that whole-second clock comparison adds (a proof of iat T passes while the clock reads T + 120.999). The jti must be
 * remembered at least that long, or the proof can be replayed at the edge of its window.
 */
const PROOF_ACCEPTED_SECONDS = 2 * IAT_WINDOW_SECONDS + 1
const MAX_PROOF_LENGTH = 4096

export interface VerifiedProof {
  jkt: string
  jwk: JWK
}

function fail(detail: string): never {
  throw new Problem('auth/invalid-dpop-proof', detail)
}

/** base64url(SHA-256(token)): the `ath` claim that binds a proof to one access token (RFC 9449 §4.2). */
export function accessTokenHash(token: string): string {
  return createHash('sha256').update(token, 'ascii').digest('base64url')
}

/**
 * Verifies a DPoP proof (RFC 9449 §4.3) for one request and records its jti so that it cannot be used again, on any
 * node. `htu` is the request URL without query and fragment. With `accessToken`, the proof must carry its `ath`.
 */
export async function verifyDpopProof(
  ctx: Pick<ServerContext, 'db'>,
  proof: string | undefined,
  request: { htm: string; htu: string; accessToken?: string; now?: Date },
): Promise<VerifiedProof> {
  if (!proof) fail('a DPoP header is required')
  if (proof.length > MAX_PROOF_LENGTH) fail('the proof is too large')
  let header: ReturnType<typeof decodeProtectedHeader>
  try {
    header = decodeProtectedHeader(proof)
  } catch {
    fail('the proof is not a JWT')
  }
  const jwk = header.jwk as JWK | undefined
  if (!jwk || typeof jwk !== 'object') fail('the proof header must carry the public key as jwk')
  if ('d' in jwk) fail('the proof header must not carry a private key')
  if (!(jwk.kty === 'EC' && jwk.crv === 'P-256') && !(jwk.kty === 'OKP' && jwk.crv === 'Ed25519')) {
    throw new Problem('identity/unsupported-key', 'device keys are P-256 or Ed25519')
  }
  let payload: Record<string, unknown>
  try {
    ;({ payload } = await jwtVerify(proof, EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: [...DEVICE_KEY_ALGORITHMS],
      maxTokenAge: IAT_WINDOW_SECONDS,
      clockTolerance: IAT_WINDOW_SECONDS,
      ...(request.now ? { currentDate: request.now } : {}),
    }))
  } catch {
    fail('signature or claims verification failed')
  }
  const { jti, htm, htu, iat, ath } = payload
  if (typeof jti !== 'string' || jti.length < 8 || jti.length > 128) fail('jti must be a string of 8 to 128 characters')
  if (htm !== request.htm) fail('htm does not match the request method')
  if (typeof htu !== 'string' || normalizeHtu(htu) !== normalizeHtu(request.htu)) fail('htu does not match the request')
  if (request.accessToken !== undefined && ath !== accessTokenHash(request.accessToken)) {
    fail('ath does not match the access token')
  }
  const jkt = await calculateJwkThumbprint(jwk, 'sha256')
  // The jti is remembered until the proof could no longer pass the iat window; the insert is the atomic check.
  const expiresAt = new Date((Math.floor(iat as number) + PROOF_ACCEPTED_SECONDS) * 1000)
  const inserted = await ctx.db
    .insertInto('dpop_proofs')
    .values({ jkt, jti, expires_at: expiresAt })
    .onConflict((oc) => oc.columns(['jkt', 'jti']).doNothing())
    .executeTakeFirst()
  if ((inserted.numInsertedOrUpdatedRows ?? 0n) === 0n) throw new Problem('auth/dpop-replay')
  return { jkt, jwk }
}

function normalizeHtu(value: string): string {
  try {
    const url = new URL(value)
    url.search = ''
    url.hash = ''
    if (url.protocol === 'ws:') url.protocol = 'http:'
    if (url.protocol === 'wss:') url.protocol = 'https:'
    return url.href
  } catch {
    return ''
  }
}

/** Forgets proofs whose iat window has passed; called by the housekeeping timer. */
export async function purgeExpiredProofs(ctx: Pick<ServerContext, 'db'>, now = new Date()): Promise<void> {
  await ctx.db.deleteFrom('dpop_proofs').where('expires_at', '<=', now).execute()
}
