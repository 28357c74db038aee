import { Type } from '@sinclair/typebox'
import { OidcHandoff, SessionEnded, StaffSessionToken } from '@strongroom/sdk/protocol'
import type { FastifyReply } from 'fastify'
import { recordAudit, SYSTEM_CHAIN } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { acceptFormBodies } from '../platform/http/form-body.ts'
import { actorOf } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { principalOf } from '../platform/http/request.ts'
import { idOf, oneOf, problemResponses } from '../platform/http/schemas.ts'
import { issuerOf } from './oauth-routes.ts'
import { backChannelLogout, LogoutTokenRefused } from './oidc-back-channel-logout.ts'
import {
  Jwk,
  oidcAuthMethods,
  oidcClients,
  OidcProviderInputSchema as ProviderInput,
  removeOidcProvider,
  saveOidcProvider,
  viewOidcProvider,
} from './oidc-providers.ts'
import {
  claimOidcSession,
  endConsoleSession,
  finishOidcSignIn,
  type OidcClientOf,
  refreshConsoleSession,
  SignInFailed,
  startOidcSignIn,
} from './oidc-sign-in.ts'

const ProviderView = Type.Object({
  issuer: Type.String(),
  clientId: Type.String(),
  authMethod: oneOf(oidcAuthMethods),
  subjectClaim: Type.String(),
  roleClaim: Type.String(),
  scopes: Type.String(),
  sessionSeconds: Type.Integer(),
  publicJwk: Type.Optional(Jwk),
  updatedAt: Type.String(),
})
/** Staff sign-in through the bank's OpenID provider, and the console sessions it opens. */
export async function oidcRoutes(app: App, ctx: ServerContext): Promise<void> {
  const clientOf = oidcClients(ctx)
  await providerRoutes(app, ctx)
  await signInRoutes(app, ctx, clientOf)
  await sessionRoutes(app, ctx, clientOf)
  await app.register(async (scope) => backChannelLogoutRoutes(scope, ctx, clientOf))
}

/** The tenant's identity provider, set by its administrator. */
async function providerRoutes(app: App, ctx: ServerContext): Promise<void> {
  const summary = 'the OpenID provider staff sign in through'
  app.put(
    '/v1/staff-sign-in/oidc',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: `Set ${summary} (audited; the secret or key is sealed and never shown)`,
        tags: ['tenancy'],
        body: ProviderInput,
        response: { 200: ProviderView, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      return saveOidcProvider(ctx, principal.tenantId, request.body, actorOf(principal))
    },
  )
  app.get(
    '/v1/staff-sign-in/oidc',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: `Show ${summary}, with the public key to register there for private_key_jwt`,
        tags: ['tenancy'],
        response: { 200: ProviderView, ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const view = await viewOidcProvider(ctx, principalOf(request).tenantId)
      if (!view) throw new Problem('request/not-found', 'no identity provider is configured')
      return view
    },
  )
  app.delete(
    '/v1/staff-sign-in/oidc',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: `Remove ${summary} (audited)`,
        tags: ['tenancy'],
        response: { 204: Type.Null(), ...problemResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      await removeOidcProvider(ctx, principal.tenantId, actorOf(principal))
      return reply.status(204).send(null)
    },
  )
}

/** Back to the console, with what it needs in the fragment (never sent to a server, never in a log). */
function toConsole(reply: FastifyReply, base: string, tenantId: string | undefined, fragment: string) {
  const query = tenantId ? `?tenant=${encodeURIComponent(tenantId)}` : ''
  return reply.status(303).header('cache-control', 'no-store').redirect(`${base}/console/${query}#${fragment}`, 303)
}

/** The browser's way through the identity provider: out with a fresh state, back with a code. */
async function signInRoutes(app: App, ctx: ServerContext, clientOf: OidcClientOf): Promise<void> {
  const failed = async (error: unknown, tenantId: string | undefined) => {
    if (!(error instanceof SignInFailed)) throw error
    const tenant = error.tenantId ?? tenantId
    await recordAudit(ctx.db, {
      tenantId: error.tenantId ?? SYSTEM_CHAIN,
      actor: { kind: 'system', id: null },
      action: 'staff.oidc.sign-in',
      outcome: 'denied',
      reason: error.failure,
      details: {},
    })
    return { tenant, fragment: `sign-in-error=${error.failure}` }
  }
  app.get(
    '/sign-in/oidc',
    {
      config: { access: allow.anyone },
      // A page the browser is sent to (a redirect to the provider), not an API operation: out of the OpenAPI document.
      schema: {
        hide: true,
        querystring: Type.Object({ tenant: idOf('ten') }, { additionalProperties: false }),
      },
    },
    async (request, reply) => {
      const base = issuerOf(ctx, request)
      const tenantId = request.query.tenant
      try {
        const url = await startOidcSignIn(ctx, clientOf, tenantId, `${base}/sign-in/oidc/callback`)
        return reply.header('cache-control', 'no-store').redirect(url.href, 303)
      } catch (error) {
        const { tenant, fragment } = await failed(error, tenantId)
        return toConsole(reply, base, tenant, fragment)
      }
    },
  )
  app.get(
    '/sign-in/oidc/callback',
    {
      config: { access: allow.anyone, guesses: 'staff-sign-in' },
      // The provider's redirect back (code and state, or an error), on to the console: a page, like the one above.
      schema: {
        hide: true,
        querystring: Type.Record(Type.String(), Type.String({ maxLength: 4096 })),
      },
    },
    async (request, reply) => {
      const base = issuerOf(ctx, request)
      try {
        const { tenantId, handoff } = await finishOidcSignIn(ctx, clientOf, new URL(request.url, base))
        return toConsole(reply, base, tenantId, `oidc=${handoff}`)
      } catch (error) {
        const { tenant, fragment } = await failed(error, undefined)
        return toConsole(reply, base, tenant, fragment)
      }
    },
  )
}

/** The console's session: its first token for the handoff code, fresh ones while it lasts, and sign-out. */
async function sessionRoutes(app: App, ctx: ServerContext, clientOf: OidcClientOf): Promise<void> {
  app.post(
    '/v1/staff/oidc/session',
    {
      config: { access: allow.anyone, guesses: 'staff-sign-in' },
      schema: {
        summary: 'Exchange the single-use code the sign-in handed the console for its first short-lived token',
        tags: ['auth'],
        body: OidcHandoff,
        response: { 201: StaffSessionToken, ...problemResponses(400, 401, 429) },
      },
    },
    async (request, reply) => {
      const session = await claimOidcSession(ctx, request.body.tenantId, request.body.handoff)
      return reply.status(201).header('cache-control', 'no-store').send(session)
    },
  )
  app.post(
    '/v1/staff/session/refresh',
    {
      config: { access: allow.staffMember },
      schema: {
        summary:
          'A fresh short-lived token for the console session this token belongs to; each token renews once, and a second renewal with it ends the session',
        tags: ['auth'],
        response: { 201: StaffSessionToken, ...problemResponses(401, 403) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      if (principal.kind !== 'staff') throw new Problem('auth/forbidden')
      const session = await refreshConsoleSession(ctx, principal)
      return reply.status(201).header('cache-control', 'no-store').send(session)
    },
  )
  app.post(
    '/v1/staff/session/sign-out',
    {
      config: { access: allow.staffMember },
      schema: {
        summary: "Sign out: every token of this console session ends; gives the identity provider's logout URL",
        tags: ['auth'],
        response: { 200: SessionEnded, ...problemResponses(401, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      if (principal.kind !== 'staff') throw new Problem('auth/forbidden')
      return endConsoleSession(
        ctx,
        clientOf,
        principal,
        `${issuerOf(ctx, request)}/console/?tenant=${principal.tenantId}`,
      )
    },
  )
}

/**
 * OpenID Connect Back-Channel Logout 1.0: the provider POSTs a logout token when a staff member signs out there (or
 * is signed out by an administrator), and their console sessions end at once. In a scope of its own: it alone parses
 * form-encoded bodies. Answers as §2.8 says: 200, or 400 with an OAuth `error`; never cached.
 */
async function backChannelLogoutRoutes(scope: App, ctx: ServerContext, clientOf: OidcClientOf): Promise<void> {
  // The logout token comes form-encoded (§2.5), never as JSON.
  scope.removeAllContentTypeParsers()
  acceptFormBodies(scope)
  scope.addContentTypeParser('*', (_request, _payload, done) => done(new Problem('request/unsupported-media-type')))
  // Every answer, refusals of the body's form or size included.
  scope.addHook('onSend', async (_request, reply, payload) => {
    reply.header('cache-control', 'no-store')
    return payload
  })
  scope.post(
    '/v1/staff-sign-in/oidc/back-channel-logout',
    {
      config: { access: allow.anyone, guesses: 'staff-sign-in' },
      schema: {
        summary: "The identity provider's back-channel logout (OpenID Connect Back-Channel Logout 1.0)",
        tags: ['auth'],
        consumes: ['application/x-www-form-urlencoded'],
        querystring: Type.Object({ tenant: idOf('ten') }, { additionalProperties: false }),
        body: Type.Object({ logout_token: Type.Optional(Type.String({ maxLength: 16_384 })) }),
        response: {
          200: Type.Null(),
          400: Type.Object({ error: Type.Literal('invalid_request'), error_description: Type.String() }),
          ...problemResponses(413, 415, 429),
        },
      },
    },
    async (request, reply) => {
      const tenantId = request.query.tenant
      try {
        const token = request.body.logout_token
        if (!token) throw new LogoutTokenRefused('logout_token is missing')
        await backChannelLogout(ctx, clientOf, tenantId, token)
        // An empty 200, as §2.8 asks (the typed reply wants a body; the untyped one sends none).
        return (reply as FastifyReply).status(200).send()
      } catch (error) {
        if (!(error instanceof LogoutTokenRefused)) throw error
        await recordAudit(ctx.db, {
          tenantId: error.tenantKnown ? tenantId : SYSTEM_CHAIN,
          actor: { kind: 'system', id: null },
          action: 'staff.oidc.back-channel-logout',
          outcome: 'denied',
          reason: error.description,
          details: {},
        })
        return reply.status(400).send({ error: 'invalid_request', error_description: error.description })
      }
    },
  )
}
