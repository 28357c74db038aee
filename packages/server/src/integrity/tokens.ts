import { errors, jwtVerify, SignJWT } from 'jose'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
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
}

/** A short-lived JWT (ES256) saying this app on this device passed attestation, bound to the device key (cnf.jkt). */
export async function issueIntegrityToken(key: SigningKey, claims: IntegrityClaims): Promise<string> {
  return new SignJWT({
    tid: claims.tenantId,
    cnf: { jkt: claims.keyThumbprint },
    app: { id: claims.appId, version: claims.appVersion },
    verdict: claims.verdict,
    flags: claims.flags,
    scope: claims.scope,
  })
    .setProtectedHeader({ alg: 'ES256', kid: key.id, typ: INTEGRITY_TOKEN_TYPE })
    .setIssuer(ISSUER)
    .setSubject(claims.deviceId)
    .setAudience(INTEGRITY_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(`${claims.lifetimeSeconds}s`)
    .sign(key.privateKey)
}

/**
 * The gate's check of a token for a device's request: missing, forged, expired, for another audience or for another
 * device (or key) each refused with its own problem type. Returns the token's scope and risk flags.
 */
export async function checkIntegrityToken(
  ctx: Pick<ServerContext, 'db'>,
  keys: { current: Map<string, import('node:crypto').KeyObject> | undefined },
  token: string | undefined,
  device: { tenantId: string; deviceId: string; jkt: string },
): Promise<{ scope: 'full' | 'read-only'; flags: string[]; app: { appId: string; appVersion: string } }> {
  if (!token) throw new Problem('integrity/missing')
  keys.current ??= await verificationKeys(ctx.db, 'integrity-token')
  let payload: Record<string, unknown>
  try {
    ;({ payload } = await jwtVerify(
      token,
      async (header) => {
        let key = keys.current?.get(header.kid ?? '')
        if (!key) {
          // A key made on another node since this one last looked.
          keys.current = await verificationKeys(ctx.db, 'integrity-token')
          key = keys.current.get(header.kid ?? '')
        }
        if (!key) throw new errors.JWKSNoMatchingKey()
        return key
      },
      { issuer: ISSUER, typ: INTEGRITY_TOKEN_TYPE, algorithms: ['ES256'] },
    ))
  } catch (error) {
    if (error instanceof errors.JWTExpired) throw new Problem('integrity/expired')
    throw new Problem('integrity/invalid')
  }
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
  }
}
