import { createHash, type KeyObject } from 'node:crypto'
import { errors, type JWTPayload, jwtVerify } from 'jose'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { signJwt } from '../platform/keyring/jws.ts'
import { type SigningKey, verificationKeys } from '../platform/keyring/signing-keys.ts'

export const INTEGRITY_TOKEN_TYPE = 'strongroom-integrity+jwt'
export const INTEGRITY_AUDIENCE = 'strongroom-api'
const ISSUER = 'strongroom'

export interface IntegrityClaims {
  tenantId: string
  deviceId: string
  keyThumbprint: string
  appId: string
  appVersion: string
  verdict: 'allow' | 'limited'
  flags: string[]
  scope: 'full' | 'read-only'
  lifetimeSeconds: number
  /** Every gated request must carry an App Attest assertion (the tenant asks for it; the device attested that way). */
  assertRequests?: boolean
}

/** A short-lived JWT (ES256) saying this app on this device passed attestation, bound to the device key (cnf.jkt). */
export async function issueIntegrityToken(key: SigningKey, claims: IntegrityClaims): Promise<string> {
  const issuedAt = Math.floor(Date.now() / 1000)
  return signJwt(key, INTEGRITY_TOKEN_TYPE, {
    tid: claims.tenantId,
    cnf: { jkt: claims.keyThumbprint },
    app: { id: claims.appId, version: claims.appVersion },
    verdict: claims.verdict,
    flags: claims.flags,
    scope: claims.scope,
    ...(claims.assertRequests ? { asr: true } : {}),
    iss: ISSUER,
    sub: claims.deviceId,
    aud: INTEGRITY_AUDIENCE,
    iat: issuedAt,
    exp: issuedAt + claims.lifetimeSeconds,
  })
}

/** Verified tokens a node remembers: about a minute of a busy node's devices, at a few hundred bytes each. */
const VERIFIED_TOKENS_KEPT = 10_000

/**
 * The gate's check of a token for a device's request: missing, forged, expired, for another audience or for another
 * device (or key) each refused with its own problem type. A token's signature is verified once per node: its claims
 * are then remembered until it expires, because a signature that verified once verifies again (signing keys are only
 * ever added, and tokens signed before a rotation stay valid until they expire). The ES256 verification was a third
 * of the gate's cost.
 */
export class IntegrityTokenChecker {
  readonly #db: ServerContext['db']
  /** The verification keys, looked up once and again only when a token names a key not seen yet. */
  #keys: Map<string, KeyObject> | undefined
  /** Verified payloads by the SHA-256 of their token, oldest first. */
  readonly #verified = new Map<string, JWTPayload>()

  constructor(ctx: Pick<ServerContext, 'db'>) {
    this.#db = ctx.db
  }

  async check(
    token: string | undefined,
    device: { tenantId: string; deviceId: string; jkt: string },
  ): Promise<{
    scope: 'full' | 'read-only'
    flags: string[]
    app: { appId: string; appVersion: string }
    assertRequests: boolean
  }> {
    if (!token) throw new Problem('integrity/missing')
    const payload = await this.#verify(token)
    const audience = Array.isArray(payload.aud) ? payload.aud : [payload.aud]
    if (!audience.includes(INTEGRITY_AUDIENCE)) throw new Problem('integrity/wrong-audience')
    const cnf = payload.cnf as { jkt?: string } | undefined
    if (payload.sub !== device.deviceId || payload.tid !== device.tenantId || cnf?.jkt !== device.jkt) {
      throw new Problem('integrity/wrong-device')
    }
    const flags = Array.isArray(payload.flags) ? payload.flags.map(String) : []
    const app = payload.app as { id?: unknown; version?: unknown } | undefined
    return {
      scope: payload.scope === 'full' ? 'full' : 'read-only',
      flags,
      app: { appId: String(app?.id), appVersion: String(app?.version) },
      assertRequests: payload.asr === true,
    }
  }

  async #verify(token: string): Promise<JWTPayload> {
    const digest = createHash('sha256').update(token).digest('base64url')
    const remembered = this.#verified.get(digest)
    if (remembered) {
      // jose's rule: a token is expired from the second its exp names.
      if ((remembered.exp as number) > Math.floor(Date.now() / 1000)) return remembered
      this.#verified.delete(digest)
      throw new Problem('integrity/expired')
    }
    this.#keys ??= await verificationKeys(this.#db, 'integrity-token')
    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(
        token,
        async (header) => {
          let key = this.#keys?.get(header.kid ?? '')
          if (!key) {
            // A key made on another node since this one last looked.
            this.#keys = await verificationKeys(this.#db, 'integrity-token')
            key = this.#keys.get(header.kid ?? '')
          }
          if (!key) throw new errors.JWKSNoMatchingKey()
          return key
        },
        { issuer: ISSUER, typ: INTEGRITY_TOKEN_TYPE, algorithms: ['ES256'], requiredClaims: ['exp'] },
      ))
    } catch (error) {
      if (error instanceof errors.JWTExpired) throw new Problem('integrity/expired')
      throw new Problem('integrity/invalid')
    }
    if (this.#verified.size >= VERIFIED_TOKENS_KEPT) {
      this.#verified.delete(this.#verified.keys().next().value as string)
    }
    this.#verified.set(digest, payload)
    return payload
  }
}
