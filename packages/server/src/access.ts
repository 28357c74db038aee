import type { FastifyRequest } from 'fastify'
import { recordAudit } from './audit/events.ts'
import type { StreamAuthenticator } from './conversations/stream-hub.ts'
import { refusalOfDeviceProof } from './identity/device-key-refusal.ts'
import { authenticateDeviceToken, type DevicePrincipal } from './identity/devices.ts'
import { DEVICE_KEY_ALGORITHMS, verifyDpopProof } from './identity/dpop.ts'
import type { DeactivatedAppVersions } from './integrity/app-versions.ts'
import type { IntegrityPolicy } from './integrity/policy.ts'
import type { IntegrityTokenChecker } from './integrity/tokens.ts'
import { checkWebDevice, refuseWebDeviceSecrets } from './integrity/web-devices.ts'
import type { ServerContext } from './platform/context.ts'
import type { AccessRule, AccessTableRow } from './platform/http/access-rule.ts'
import type { App } from './platform/http/fastify.ts'
import { actorOf, type Principal } from './platform/http/principal.ts'
import { Problem } from './platform/http/problems.ts'
import { requestHtu, singleHeader } from './platform/http/request.ts'
import type { SigningKey } from './platform/keyring/signing-keys.ts'
import { authenticateClientToken } from './tenancy/api-clients.ts'
import { authenticateStaffToken } from './tenancy/staff.ts'

/**
 * The principal behind an Authorization header (and, for devices, a DPoP proof): `Bearer srs_…` for staff,
 * `DPoP srd_…` for devices. Throws a Problem for anything missing, unknown, expired or not proven.
 */
export async function authenticate(
  ctx: Pick<ServerContext, 'db'>,
  credentials: { authorization: string | undefined; dpop: string | undefined; htm: string; htu: string },
): Promise<Principal> {
  const { authorization } = credentials
  if (!authorization) throw new Problem('auth/missing-credentials')
  const space = authorization.indexOf(' ')
  const scheme = authorization.slice(0, space).toLowerCase()
  const token = authorization.slice(space + 1).trim()
  if (space < 0 || !token) throw new Problem('auth/missing-credentials')
  if (scheme === 'bearer') {
    const principal = token.startsWith('srb_')
      ? await authenticateClientToken(ctx, token)
      : await authenticateStaffToken(ctx, token)
    if (!principal) throw new Problem('auth/invalid-token')
    return principal
  }
  if (scheme === 'dpop') {
    const principal = await authenticateDeviceToken(ctx, token)
    if (!principal) throw new Problem('auth/invalid-token')
    try {
      const proof = await verifyDpopProof(ctx, credentials.dpop, {
        htm: credentials.htm,
        htu: credentials.htu,
        accessToken: token,
      })
      if (proof.jkt !== principal.jkt)
        throw new Problem('auth/invalid-dpop-proof', 'the proof key is not the token key')
    } catch (error) {
      // A valid token without a valid proof is a stolen token or a replay: the bank wants to know.
      if (error instanceof Problem) await auditRefusal(ctx, principal, error)
      throw error
    }
    return principal
  }
  throw new Problem('auth/missing-credentials', 'use the Bearer or DPoP scheme')
}

/** What the gate keeps per node so that a gated request costs little more than an ungated one. */
export interface IntegrityGate {
  tokens: IntegrityTokenChecker
  deactivated: DeactivatedAppVersions
  /** The tenant's integrity policy, cached per node: what browsers may do. */
  policyOf: (tenantId: string) => Promise<IntegrityPolicy | undefined>
}

/**
 * The API gate: with integrity required (production by default), a device's request must carry a valid integrity
 * token for this device; a read-only token allows only reads. Gives the token's risk flags and the app it vouches for.
 */
export async function checkDeviceIntegrity(
  gate: IntegrityGate,
  token: string | undefined,
  device: DevicePrincipal,
  method: string,
  fullScopeOnly = false,
): Promise<{ flags: string[]; app: { appId: string; appVersion: string } }> {
  const { scope, flags, app } = await gate.tokens.check(token, device)
  // Checked on every request, so that switching a version off takes effect at once on every node.
  if (await gate.deactivated.has(device.tenantId, app)) {
    throw new Problem('integrity/denied', 'app-version-deactivated')
  }
  // A limited token (a rooted device, an emulator) reads; it neither writes nor receives secrets.
  if (scope === 'read-only' && (method !== 'GET' || fullScopeOnly)) throw new Problem('integrity/limited')
  return { flags, app }
}

/**
 * The gate for one device request: an app shows its integrity token; a browser, which cannot have one, is held to
 * what the tenant lets browsers do (integrity/web-devices.ts) and never reaches a route for attested apps. Gives the
 * risk flags the request carries.
 */
async function checkDeviceGate(
  gate: IntegrityGate,
  device: DevicePrincipal,
  request: FastifyRequest,
  route: string,
  attested: boolean,
): Promise<string[]> {
  if (device.deviceKind === 'web') {
    if (attested) refuseWebDeviceSecrets(device)
    return checkWebDevice(device, route, await gate.policyOf(device.tenantId))
  }
  const token = singleHeader(request.headers['strongroom-integrity'])
  return (await checkDeviceIntegrity(gate, token, device, request.method, attested)).flags
}

/**
 * Installs the guard: a route whose `config.access` is missing stops the server from starting (deny by default), and
 * each request is checked against its route's rule before its body is parsed. Gives the access table, filled in as
 * the modules register their routes.
 */
export function installAccessControl(
  app: App,
  ctx: Pick<ServerContext, 'db' | 'config'>,
  gate: IntegrityGate,
  integrityRequired: (tenantId: string, route: string) => Promise<boolean>,
): readonly AccessTableRow[] {
  const table: AccessTableRow[] = []
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    const access = route.config?.access
    for (const method of methods) {
      if (route.url.startsWith('/documentation')) continue
      if (!access) throw new Error(`route ${method} ${route.url} has no access rule (config.access)`)
      // Fastify answers HEAD with the GET handler minus the body, and the same rule: the table lists the GET.
      if (method !== 'HEAD') table.push({ method, url: route.url, access })
    }
  })
  app.addHook('onRequest', async (request, reply) => {
    const access = request.routeOptions.config.access
    if (!access) {
      if (request.routeOptions.url === undefined) return // unmatched: the not-found handler answers
      throw new Problem('auth/forbidden')
    }
    if (access.who === 'anyone' || access.who === 'device-key' || access.who === 'stream') return
    let principal: Principal
    try {
      principal = await authenticate(ctx, {
        authorization: request.headers.authorization,
        dpop: singleHeader(request.headers.dpop),
        htm: request.method,
        htu: requestHtu(request),
      })
    } catch (error) {
      reply.header('www-authenticate', `Bearer, DPoP algs="${DEVICE_KEY_ALGORITHMS.join(' ')}"`)
      throw error
    }
    const refusal = refusalFor(access, principal)
    if (refusal) {
      await auditRefusal(ctx, principal, refusal, `${request.method} ${request.routeOptions.url}`)
      throw refusal
    }
    const route = `${request.method} ${request.routeOptions.url}`
    const attested = access.who === 'attested-device'
    const exempt = access.who === 'device' && access.integrity === 'exempt'
    const gated =
      principal.kind === 'device' && (attested || (!exempt && (await integrityRequired(principal.tenantId, route))))
    if (gated && principal.kind === 'device') {
      try {
        request.integrityFlags = await checkDeviceGate(gate, principal, request, route, attested)
      } catch (error) {
        if (error instanceof Problem && error.kind === 'integrity/web-device-refused') {
          await auditRefusal(ctx, principal, error, route)
        }
        throw error
      }
    }
    request.principal = principal
  })
  return table
}

/** Why the principal may not use a route with this rule, if it may not. */
function refusalFor(access: Exclude<AccessRule, { who: 'anyone' | 'device-key' | 'stream' }>, principal: Principal) {
  if (access.who === 'authenticated') return undefined
  if (access.who === 'staff-member') {
    return principal.kind === 'staff' ? undefined : new Problem('auth/forbidden', 'this is for staff members')
  }
  if (principal.kind === 'device') {
    return access.who === 'staff' ? new Problem('auth/forbidden', 'this is for staff and bank backends') : undefined
  }
  if (access.who === 'device' || access.who === 'attested-device') {
    return new Problem('auth/forbidden', 'this is for devices')
  }
  if (access.who === 'member' && principal.kind === 'client') {
    return new Problem('auth/forbidden', 'bank backends are not conversation members')
  }
  const scope = access.who === 'member' ? access.staffScope : access.scope
  return principal.scopes.includes(scope) ? undefined : new Problem('auth/forbidden', `this needs the ${scope} scope`)
}

async function auditRefusal(ctx: Pick<ServerContext, 'db'>, principal: Principal, problem: Problem, route?: string) {
  await recordAudit(ctx.db, {
    tenantId: principal.tenantId,
    actor: actorOf(principal),
    action: 'auth.refuse',
    outcome: 'denied',
    reason: problem.kind,
    details: route ? { route } : {},
  })
}

/**
 * The stream's sign-in: its first frame carries the same credentials as an HTTP request (`GET /v1/stream`), and a
 * device's passes the same integrity gate.
 */
export function streamAuthenticator(
  ctx: Pick<ServerContext, 'db'>,
  gate: IntegrityGate,
  integrityRequired: (tenantId: string, route: string) => Promise<boolean>,
  wipeKey: SigningKey,
): StreamAuthenticator {
  return async (frame, htu) => {
    const credentials = { authorization: frame.authorization, dpop: frame.dpop, htm: 'GET', htu }
    const principal = await authenticate(ctx, credentials).catch(async (error: unknown) => {
      // A revoked or suspended device reconnecting with its old token: answer with the wipe command or the
      // suspension, not a plain refusal that the SDK would retry.
      const [scheme, token] = frame.authorization.split(' ', 2)
      if (
        error instanceof Problem &&
        error.kind === 'auth/invalid-token' &&
        scheme?.toLowerCase() === 'dpop' &&
        token
      ) {
        const refusal = await refusalOfDeviceProof(ctx, wipeKey, frame.dpop, { htm: 'GET', htu, accessToken: token })
        if (refusal) throw refusal
      }
      throw error
    })
    if (principal.kind === 'device' && (await integrityRequired(principal.tenantId, 'GET /v1/stream'))) {
      // A browser has no integrity token: the tenant's policy for browsers decides instead.
      if (principal.deviceKind === 'web') {
        checkWebDevice(principal, 'GET /v1/stream', await gate.policyOf(principal.tenantId))
        return { principal }
      }
      const { app } = await checkDeviceIntegrity(gate, frame.integrity, principal, 'GET')
      return { principal, app }
    }
    return { principal }
  }
}
