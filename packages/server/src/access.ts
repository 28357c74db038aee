import type { FastifyRequest } from 'fastify'
import { recordAudit } from './audit/events.ts'
import { authenticateDeviceToken, type DevicePrincipal } from './identity/devices.ts'
import { DEVICE_KEY_ALGORITHMS, verifyDpopProof } from './identity/dpop.ts'
import type { DeactivatedAppVersions } from './integrity/app-versions.ts'
import type { IntegrityPolicy } from './integrity/policy.ts'
import type { IntegrityTokenChecker } from './integrity/tokens.ts'
import { checkWebDevice, refuseWebDeviceSecrets } from './integrity/web-devices.ts'
import type { ServerContext } from './platform/context.ts'
import type { App } from './platform/http/fastify.ts'
import { actorOf, type Principal } from './platform/http/principal.ts'
import { Problem } from './platform/http/problems.ts'
import { requestHtu, singleHeader } from './platform/http/request.ts'
import type { Scope } from './platform/http/roles.ts'
import { authenticateClientToken } from './tenancy/api-clients.ts'
import { authenticateStaffToken } from './tenancy/staff.ts'

/**
 * Who may call what. Every route the server has must appear here or the server refuses to start: access is denied
 * by default. Conversation membership and tenant scope are then checked by the capability, on the row itself.
 */
type Access =
  | { who: 'anyone' }
  | { who: 'device-key' } // the handler verifies a DPoP proof: enrolment and token renewal
  | { who: 'stream' } // authenticates in its first frame, with the same credentials as HTTP
  | { who: 'staff'; scope: Scope } // staff or a bank backend holding the scope
  | { who: 'any'; scope: Scope } // a device, or staff or a bank backend holding the scope
  | { who: 'member'; staffScope: Scope } // a device, or staff holding the scope
  | { who: 'device' } // an enrolled device, proving its key
  | { who: 'attested-device' } // an enrolled device with a full-scope integrity token, even where tokens are optional
  | { who: 'staff-member' } // any staff member, acting on their own account (no scope needed); not a bank backend
  | { who: 'authenticated' } // any valid credentials

const anyone = { who: 'anyone' } as const
const deviceKey = { who: 'device-key' } as const
const staff = (scope: Scope) => ({ who: 'staff', scope }) as const
const member = (staffScope: Scope) => ({ who: 'member', staffScope }) as const
const device = { who: 'device' } as const
const attestedDevice = { who: 'attested-device' } as const
const staffMember = { who: 'staff-member' } as const
const any = (scope: Scope) => ({ who: 'any', scope }) as const

// biome-ignore format: read as a table
export const accessTable: Record<string, Access> = {
  'GET /healthz':                                       anyone,
  'GET /readyz':                                        anyone,
  'GET /metrics':                                       anyone,
  'GET /openapi.json':                                  anyone,
  'GET /v1/me':                                         { who: 'authenticated' },
  'POST /v1/staff':                                     staff('staff:admin'),
  'POST /v1/staff/:staffId/tokens':                     staff('staff:admin'),
  'POST /v1/customers':                                 staff('customers:write'),
  'GET /v1/customers/:customerId':                      staff('customers:write'),
  'GET /v1/customers/:customerId/devices':              staff('customers:write'),
  'GET /v1/customers/:customerId/device-integrity':     staff('customers:write'),
  'POST /v1/customers/:customerId/export':              staff('customers:export'),
  'POST /v1/customers/:customerId/enrolment-codes':     staff('devices:enrol'),
  'POST /v1/devices':                                   deviceKey,
  'POST /v1/devices/token':                             deviceKey,
  // Only a revoked device's key is accepted: it confirms that it erased its store.
  'POST /v1/devices/wipe-confirmation':                 deviceKey,
  'GET /.well-known/strongroom-wipe-keys':              anyone,
  'GET /v1/policies/retention':                         staff('staff:admin'),
  'PUT /v1/policies/retention':                         staff('staff:admin'),
  'PUT /v1/conversations/:conversationId/retention':    staff('staff:admin'),
  'GET /v1/devices':                                    device,
  'POST /v1/devices/:deviceId/revoke':                  member('devices:revoke'),
  'POST /v1/devices/:deviceId/suspend':                 member('devices:revoke'),
  // A suspended device's own credentials are refused before this: another device of the customer resumes it.
  'POST /v1/devices/:deviceId/resume':                  member('devices:revoke'),
  'POST /v1/conversations':                             staff('conversations:write'),
  'GET /v1/conversations':                              member('conversations:read'),
  'GET /v1/conversations/:conversationId':              member('conversations:read'),
  'POST /v1/conversations/:conversationId/members':     staff('conversations:write'),
  'PUT /v1/conversations/:conversationId/assignment':   staff('conversations:assign'),
  'GET /v1/staff':                                      staff('conversations:assign'),
  'POST /v1/conversations/:conversationId/messages':    member('conversations:write'),
  'GET /v1/conversations/:conversationId/messages':     member('conversations:read'),
  'POST /v1/conversations/:conversationId/markers':     member('conversations:read'),
  'GET /v1/stream':                                     { who: 'stream' },
  'GET /v1/audit/events':                               staff('audit:read'),
  'POST /v1/consents':                                  staff('consents:write'),
  'GET /v1/consents':                                   any('consents:write'),
  'GET /v1/consents/:consentId':                        any('consents:write'),
  'POST /v1/api-clients':                               staff('staff:admin'),
  'POST /v1/oauth/token':                               anyone,
  'GET /.well-known/oauth-authorization-server':        anyone,
  'POST /v1/consents/:consentId/approve':               device,
  'POST /v1/consents/:consentId/decline':               device,
  'GET /.well-known/jwks.json':                         anyone,
  'GET /.well-known/strongroom-pins':                   anyone,
  'POST /v1/factors/totp':                              device,
  'POST /v1/factors/totp/confirm':                      device,
  'POST /v1/factors/totp/verify':                       device,
  'GET /v1/factors':                                    device,
  'POST /v1/factors/:factorId/remove':                  device,
  'GET /v1/customers/:customerId/factors':              staff('customers:write'),
  'POST /v1/customers/:customerId/factors/reset':       staff('factors:reset'),
  'POST /v1/factors/sms/send':                          any('customers:write'),
  'POST /v1/factors/sms/verify':                        any('customers:write'),
  'POST /v1/consents/:consentId/sms-confirmation':      staff('consents:write'),
  'POST /v1/passkeys/registration/options':            device,
  'POST /v1/passkeys/registration':                    device,
  'GET /v1/passkeys':                                  device,
  'POST /v1/passkeys/authentication/options':          device,
  'POST /v1/passkeys/authentication':                  device,
  'POST /v1/consents/:consentId/approve/passkey':      device,
  'POST /v1/staff/passkey/registration/options':       staffMember,
  'POST /v1/staff/passkey/registration':               staffMember,
  // A staff sign-in needs no credentials: the passkey assertion is the credential, and it yields a staff token.
  'POST /v1/staff/passkey/sign-in/options':            anyone,
  'POST /v1/staff/passkey/sign-in':                    anyone,
  'POST /v1/risk/sim-swap':                             staff('customers:write'),
  'GET /v1/policies/step-up':                            staff('staff:admin'),
  'PUT /v1/policies/step-up':                            staff('staff:admin'),
  'GET /v1/policies/integrity':                         staff('staff:admin'),
  'PUT /v1/policies/integrity':                         staff('staff:admin'),
  'GET /v1/policies/dlp':                               staff('staff:admin'),
  'PUT /v1/policies/dlp':                               staff('staff:admin'),
  'GET /v1/policies/links':                             staff('staff:admin'),
  'PUT /v1/policies/links':                             staff('staff:admin'),
  'POST /v1/dlp/scan':                                  staff('conversations:write'),
  'POST /v1/integrity/challenges':                      device,
  'POST /v1/integrity/attest':                          device,
  'POST /v1/apps/:appId/versions/:appVersion/deactivate': staff('staff:admin'),
  'PUT /v1/apps/:appId':                                staff('staff:admin'),
  'PUT /v1/secrets/:name':                              staff('staff:admin'),
  'POST /v1/integrity/secrets-key':                     device,
  'GET /v1/secrets/:name':                              attestedDevice,
  'GET /v1/e2e/credential-authority':                   anyone,
  'POST /v1/e2e/credentials':                           member('conversations:write'),
  'POST /v1/e2e/key-packages':                          member('conversations:write'),
  'GET /v1/e2e/key-packages':                           member('conversations:write'),
  'GET /v1/e2e/welcomes':                               member('conversations:write'),
  'DELETE /v1/e2e/welcomes/:welcomeId':                 member('conversations:write'),
  'POST /v1/conversations/:conversationId/e2e/key-packages/claim': member('conversations:write'),
  'PUT /v1/conversations/:conversationId/e2e/group':    member('conversations:write'),
  'GET /v1/conversations/:conversationId/e2e/group':    member('conversations:read'),
  'POST /v1/conversations/:conversationId/e2e/commits': member('conversations:write'),
  'POST /v1/conversations/:conversationId/e2e/archive-removal-exemptions': staff('archive:manage'),
  'GET /v1/conversations/:conversationId/e2e/group-info': member('conversations:write'),
  'POST /v1/conversations/:conversationId/e2e/readd-requests': member('conversations:write'),
  'PUT /v1/channels/:connector':                        staff('staff:admin'),
  'GET /v1/channels':                                   staff('staff:admin'),
  // Authenticated by the provider's signature (or, for the handshake, Meta's verify token), not by our credentials.
  'POST /v1/channels/twilio/webhook':                   anyone,
  'POST /v1/channels/whatsapp/webhook':                 anyone,
  'GET /v1/channels/whatsapp/webhook':                  anyone,
  'POST /v1/channels/messenger/webhook':                anyone,
  'GET /v1/channels/messenger/webhook':                 anyone,
  'POST /v1/conversations/:conversationId/public-messages': staff('conversations:write'),
  'GET /v1/conversations/:conversationId/public-messages': member('conversations:read'),
  'POST /v1/conversations/:conversationId/public-channel/customer': staff('customers:write'),
  'POST /v1/conversations/:conversationId/pivot':       staff('conversations:write'),
  'GET /v1/conversations/:conversationId/pivot-links':  staff('conversations:read'),
  'GET /v1/channels/conversations':                     staff('conversations:read'),
  // The token is the credential; the answer carries no personal data.
  'POST /v1/pivot/open':                                anyone,
  'POST /v1/pivot/redeem':                              device,
  // A browser that is not enrolled: the link and a fresh factor of its customer make it a device (pivot-step-up.ts).
  'POST /v1/pivot/step-up/options':                     anyone,
  'POST /v1/pivot/step-up/sms':                         anyone,
  'POST /v1/pivot/enrol':                               deviceKey,
  // The web pages and their hashed assets (packages/web); the simulator's only in dev mode.
  'GET /console':                                       anyone,
  'GET /console/':                                      anyone,
  'GET /secure':                                        anyone,
  'GET /secure/':                                       anyone,
  'GET /assets/:file':                                  anyone,
  'GET /simulator':                                     anyone,
  'GET /simulator/':                                    anyone,
  'GET /v1/archive/records':                            staff('archive:read'),
  'POST /v1/archive/exports':                           staff('archive:read'),
  'GET /v1/archive/verification':                       staff('archive:read'),
  'GET /v1/archive/retention':                          staff('archive:read'),
  'PUT /v1/archive/retention':                          staff('archive:manage'),
  'GET /v1/archive/holds':                              staff('archive:read'),
  'POST /v1/archive/holds':                             staff('archive:manage'),
  'POST /v1/archive/holds/:holdId/release':             staff('archive:manage'),
  'POST /v1/archive/customers/:customerId/erase':       staff('archive:manage'),
  // Dev mode only (the server refuses to register them in production): the carrier simulator.
  'PUT /dev/camara/sim-swaps/:phoneNumber':             anyone,
  'POST /dev/camara/sim-swap/v0/check':                 anyone,
  'POST /dev/camara/sim-swap/v0/retrieve-date':         anyone,
  // Dev mode only: the channel simulator (the customer's phone, and the providers' send APIs).
  'POST /dev/simulator/phone/:connector/messages':      anyone,
  'POST /dev/simulator/phone/:connector/receipts':      anyone,
  'GET /dev/simulator/channels':                         anyone,
  'GET /dev/simulator/phone/:connector/inbox':          anyone,
  'GET /dev/simulator/phone/:connector/thread':         anyone,
  'POST /dev/simulator/provider/twilio/2010-04-01/Accounts/:accountSid/Messages.json': anyone,
  'POST /dev/simulator/provider/whatsapp/:version/:phoneNumberId/messages': anyone,
  'POST /dev/simulator/provider/messenger/:version/me/messages': anyone,
}

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

/** Installs the access table: a route without a rule fails at start, and each request is checked before parsing. */
/** Device routes that work without an integrity token: the ones that obtain it. */
const integrityExempt = new Set(['POST /v1/integrity/challenges', 'POST /v1/integrity/attest'])

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

export function installAccessControl(
  app: App,
  ctx: Pick<ServerContext, 'db' | 'config'>,
  gate: IntegrityGate,
  integrityRequired: (tenantId: string, route: string) => Promise<boolean>,
): void {
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    for (const method of methods) {
      if (route.url.startsWith('/documentation')) continue
      // Fastify answers HEAD with the GET handler minus the body: the same rule applies.
      const key = `${method === 'HEAD' ? 'GET' : method} ${route.url}`
      if (!accessTable[key]) throw new Error(`route ${key} has no entry in the access table`)
      route.config = { ...(route.config as object), access: accessTable[key] } as typeof route.config
    }
  })
  app.addHook('onRequest', async (request, reply) => {
    const access = (request.routeOptions.config as { access?: Access }).access
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
    const gated =
      principal.kind === 'device' &&
      (attested || (!integrityExempt.has(route) && (await integrityRequired(principal.tenantId, route))))
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
}

/** Why the principal may not use a route with this rule, if it may not. */
function refusalFor(access: Exclude<Access, { who: 'anyone' | 'device-key' | 'stream' }>, principal: Principal) {
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
