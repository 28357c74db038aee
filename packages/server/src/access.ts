import type { IntegrityPolicy } from '@strongroom/sdk/protocol'
import type { FastifyRequest } from 'fastify'
import { recordAudit } from './audit/events.ts'
import type { StreamAuthenticator } from './conversations/stream-hub.ts'
import { refusalOfDeviceProof } from './identity/device-key-refusal.ts'
import { authenticateDeviceToken, type DevicePrincipal } from './identity/devices.ts'
import { DEVICE_KEY_ALGORITHMS, verifyDpopProof } from './identity/dpop.ts'
import type { DeactivatedAppVersions } from './integrity/app-versions.ts'
import type { IntegrityTokenChecker } from './integrity/tokens.ts'
import { checkWebDevice, refuseWebDeviceSecrets } from './integrity/web-devices.ts'
import type { ServerContext } from './platform/context.ts'
import {
  type AccessRule,
  type AccessTableRow,
  type ActionGuard,
  type GuardedAction,
  type IntegrityScope,
  integrityRefusal,
  type PrincipalRule,
  refusalFor,
} from './platform/http/access-rule.ts'
import type { App } from './platform/http/fastify.ts'
import { actorOf, type Principal } from './platform/http/principal.ts'
import { Problem } from './platform/http/problems.ts'
import { principalOf, requestHtu, singleHeader } from './platform/http/request.ts'
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
  /** The per-request App Attest assertion, for tokens that demand one (integrity/request-assertions.ts). */
  requestAssertion: (
    device: DevicePrincipal,
    request: { appId: string; dpop: string | undefined; assertion: string | undefined },
  ) => Promise<void>
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
  proof: { dpop: string | undefined; assertion: string | undefined },
  fullScopeOnly = false,
): Promise<{ scope: IntegrityScope; flags: string[]; app: { appId: string; appVersion: string } }> {
  const { scope, flags, app, assertRequests } = await gate.tokens.check(token, device)
  // Checked on every request, so that switching a version off takes effect at once on every node.
  if (await gate.deactivated.has(device.tenantId, app)) {
    throw new Problem('integrity/denied', 'app-version-deactivated')
  }
  const limited = integrityRefusal(scope, method, fullScopeOnly)
  if (limited) throw limited
  if (assertRequests) await gate.requestAssertion(device, { appId: app.appId, ...proof })
  return { scope, flags, app }
}

/**
 * The gate for one device request: an app shows its integrity token; a browser, which cannot have one, is held to
 * what the tenant lets browsers do (integrity/web-devices.ts) and never reaches a route for attested apps. Gives the
 * risk flags the request carries.
 */
async function checkDeviceGate(
  ctx: Pick<ServerContext, 'db'>,
  gate: IntegrityGate,
  device: DevicePrincipal,
  request: FastifyRequest,
  action: RuledRoute,
): Promise<string[]> {
  const attested = action.access.who === 'attested-device'
  if (device.deviceKind === 'web') return admitBrowser(ctx, gate, device, action, attested)
  const token = singleHeader(request.headers['strongroom-integrity'])
  const proof = {
    dpop: singleHeader(request.headers.dpop),
    assertion: singleHeader(request.headers['strongroom-assertion']),
  }
  return (await checkDeviceIntegrity(gate, token, device, request.method, proof, attested)).flags
}

/** A route (`METHOD /path`) and its rule, whether a request or a stream frame is held to it. */
type RuledRoute = { route: string; access: AccessRule }

/** A browser held to the tenant's rules for browsers, on a request or a stream frame; a refusal is audited. */
async function admitBrowser(
  ctx: Pick<ServerContext, 'db'>,
  gate: IntegrityGate,
  device: DevicePrincipal,
  action: RuledRoute,
  attested = false,
): Promise<string[]> {
  try {
    if (attested) refuseWebDeviceSecrets(device)
    return checkWebDevice(device, action.route, action.access, await gate.policyOf(device.tenantId))
  } catch (error) {
    if (error instanceof Problem) await auditRefusal(ctx, device, error, action.route)
    throw error
  }
}

/**
 * Installs the guard: a route whose `config.access` is missing stops the server from starting (deny by default), and
 * each request is checked against its route's rule before its body is parsed. Gives the access table, filled in as
 * the modules register their routes.
 */
export function installAccessControl(
  app: App,
  ctx: Pick<ServerContext, 'db' | 'config'>,
  { gate, integrityRequired, requireMember }: GuardChecks,
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
        htu: requestHtu(request, ctx.config.publicUrl),
      })
    } catch (error) {
      reply.header('www-authenticate', `Bearer, DPoP algs="${DEVICE_KEY_ALGORITHMS.join(' ')}"`)
      throw error
    }
    const route = `${request.method} ${request.routeOptions.url}`
    const gated = await admit(ctx, integrityRequired, principal, access, route)
    if (gated && principal.kind === 'device') {
      request.integrityFlags = await checkDeviceGate(ctx, gate, principal, request, { route, access })
    }
    request.principal = principal
  })
  // After validation, so that a malformed id is a 400 as before; a conversation the caller may not see is a 404.
  app.addHook('preHandler', async (request) => {
    const access = request.routeOptions.config.access
    if (!access || !('membership' in access) || !access.membership) return
    const conversationId = (request.params as Record<string, string>)[access.membership] ?? ''
    await requireMember(principalOf(request), conversationId)
  })
  return table
}

/** What the guard consults beyond the credentials: the same for HTTP requests and stream frames. */
export interface GuardChecks {
  gate: IntegrityGate
  /** Whether the tenant's policy requires an integrity token for a route (`METHOD /path`). */
  integrityRequired: (tenantId: string, route: string) => Promise<boolean>
  /** Throws a 404 Problem unless the principal may act on the conversation (`requireConversationAccess`). */
  requireMember: (principal: Principal, conversationId: string) => Promise<void>
}

/**
 * The guard's questions that a request and a stream frame share: may the principal act under the rule (a refusal is
 * audited and thrown), and must a device's integrity token be checked for this route?
 */
async function admit(
  ctx: Pick<ServerContext, 'db'>,
  integrityRequired: (tenantId: string, route: string) => Promise<boolean>,
  principal: Principal,
  access: PrincipalRule,
  route: string,
): Promise<boolean> {
  const refusal = refusalFor(access, principal)
  if (refusal) {
    await auditRefusal(ctx, principal, refusal, route)
    throw refusal
  }
  if (principal.kind !== 'device') return false
  if (access.who === 'attested-device') return true
  if (access.who === 'device' && access.integrity === 'exempt') return false
  return integrityRequired(principal.tenantId, route)
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
 * The stream's sign-in: its first frame carries the same credentials as an HTTP request (`GET /v1/stream`), a device's
 * passes the same integrity gate, and the principal must be one that may read messages. Gives the guard that holds
 * each later frame (a send, an ack) to its HTTP route's rule, with the integrity token the stream signed in with.
 */
export function streamAuthenticator(
  ctx: Pick<ServerContext, 'db'>,
  { gate, integrityRequired, requireMember }: GuardChecks,
  wipeKey: SigningKey,
  rules: { stream: AccessRule; read: GuardedAction },
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
    let integrity: { scope: IntegrityScope; app: { appId: string; appVersion: string } } | undefined
    // A browser has no integrity token: where the gate applies, the tenant's policy for browsers decides instead.
    const browser = principal.kind === 'device' && principal.deviceKind === 'web' ? principal : undefined
    if (browser) {
      if (await integrityRequired(browser.tenantId, 'GET /v1/stream')) {
        await admitBrowser(ctx, gate, browser, { route: 'GET /v1/stream', access: rules.stream })
      }
    } else if (principal.kind === 'device') {
      const proof = { dpop: frame.dpop, assertion: frame.assertion }
      if (await integrityRequired(principal.tenantId, 'GET /v1/stream')) {
        integrity = await checkDeviceIntegrity(gate, frame.integrity, principal, 'GET', proof)
      } else if (frame.integrity) {
        // Not needed to sign in, but a frame may need it (a route the policy names): kept if it is valid.
        integrity = await checkDeviceIntegrity(gate, frame.integrity, principal, 'GET', proof).catch(() => undefined)
      }
    }
    const admitted = async (action: GuardedAction) => {
      if (!(await admit(ctx, integrityRequired, principal, action.access, action.route))) return
      if (browser) {
        await admitBrowser(ctx, gate, browser, action)
        return
      }
      if (!integrity) throw new Problem('integrity/missing')
      const limited = integrityRefusal(integrity.scope, action.route.slice(0, action.route.indexOf(' ')))
      if (limited) throw limited
    }
    // Signing in reads every conversation the principal is a member of: the stream joins those, and no other.
    await admitted(rules.read)
    const guard: ActionGuard = async (action, conversation) => {
      await admitted(action)
      const { access } = action
      if ('membership' in access && access.membership && !conversation.joined) {
        await requireMember(principal, conversation.id)
      }
    }
    return { principal, app: integrity?.app, guard }
  }
}
