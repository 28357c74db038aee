import { Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { principalOf, requestHtu } from '../platform/http/request.ts'
import { oneOf, problemResponses } from '../platform/http/schemas.ts'
import { ASSERTION_ALGORITHMS, clientScopes, issueClientToken, OAuthError, registerApiClient } from './api-clients.ts'

const PublicJwk = Type.Object(
  {
    kty: Type.String(),
    kid: Type.Optional(Type.String()),
    alg: Type.Optional(Type.String()),
    use: Type.Optional(Type.String()),
    crv: Type.Optional(Type.String()),
    x: Type.Optional(Type.String()),
    y: Type.Optional(Type.String()),
    n: Type.Optional(Type.String()),
    e: Type.Optional(Type.String()),
  },
  { additionalProperties: false, description: 'a public JWK; private members are refused' },
)

const OAuthErrorBody = Type.Object(
  { error: Type.String(), error_description: Type.String() },
  { description: 'RFC 6749 §5.2 error' },
)

export async function oauthRoutes(app: App, ctx: ServerContext): Promise<void> {
  await metadataRoutes(app, ctx)
  await apiClientRoutes(app, ctx)
  // The token endpoint speaks OAuth 2.0 as RFC 6749 defines it: a form-encoded request, and errors in the
  // protocol's own JSON format rather than problem documents, so that standard OAuth clients work unchanged.
  await app.register(async (scope: App) => tokenRoutes(scope, ctx))
}

/** This server's issuer identifier (RFC 8414): its public URL, or the origin the client addressed. */
function issuerOf(ctx: ServerContext, request: FastifyRequest): string {
  return ctx.config.publicUrl ?? new URL(requestHtu(request)).origin
}

/** The authorization server's metadata (RFC 8414). */
async function metadataRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/.well-known/oauth-authorization-server',
    {
      config: { access: allow.anyone },
      schema: {
        summary:
          'OAuth 2.0 authorization server metadata (RFC 8414), for bank backends that discover the token endpoint',
        tags: ['tenancy'],
        response: {
          200: Type.Object({
            issuer: Type.String(),
            token_endpoint: Type.String(),
            grant_types_supported: Type.Array(Type.String()),
            token_endpoint_auth_methods_supported: Type.Array(Type.String()),
            token_endpoint_auth_signing_alg_values_supported: Type.Array(Type.String()),
          }),
        },
      },
    },
    async (request) => {
      const issuer = issuerOf(ctx, request)
      return {
        issuer,
        token_endpoint: `${issuer}/v1/oauth/token`,
        grant_types_supported: ['client_credentials'],
        token_endpoint_auth_methods_supported: ['private_key_jwt'],
        token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
      }
    },
  )
}

/** Registering a bank backend as an OAuth client. */
async function apiClientRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/api-clients',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: 'Register a bank backend as an OAuth client with the public keys of its private_key_jwt assertions',
        tags: ['tenancy'],
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 100 }),
            jwks: Type.Object(
              { keys: Type.Array(PublicJwk, { minItems: 1, maxItems: 10 }) },
              { additionalProperties: false },
            ),
            scopes: Type.Array(oneOf(clientScopes), { minItems: 1, uniqueItems: true }),
            webhookUrl: Type.Optional(
              Type.String({
                format: 'uri',
                maxLength: 2000,
                description: 'where decisions are posted (https in production)',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            clientId: Type.String(),
            name: Type.String(),
            scopes: Type.Array(Type.String()),
            tokenEndpoint: Type.String(),
          }),
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const webhook = request.body.webhookUrl ? new URL(request.body.webhookUrl) : undefined
      if (
        webhook &&
        webhook.protocol !== 'https:' &&
        (ctx.config.mode === 'production' || webhook.protocol !== 'http:')
      ) {
        throw new Problem('request/invalid', 'webhookUrl must be https')
      }
      const client = await registerApiClient(ctx, principal.tenantId, request.body, actorOf(principal))
      const tokenEndpoint = requestHtu(request).replace(/\/v1\/api-clients$/, '/v1/oauth/token')
      return reply.status(201).send({ ...client, tokenEndpoint })
    },
  )
}

/** The token endpoint, in a scope of its own: it alone parses form-encoded bodies. */
async function tokenRoutes(scope: App, ctx: ServerContext): Promise<void> {
  scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) =>
    done(null, Object.fromEntries(new URLSearchParams(body as string))),
  )
  scope.post(
    '/v1/oauth/token',
    {
      config: { access: allow.anyone, guesses: 'oauth-token' },
      schema: {
        summary: 'OAuth 2.0 token endpoint: client_credentials with private_key_jwt (RFC 7523)',
        tags: ['tenancy'],
        consumes: ['application/x-www-form-urlencoded'],
        body: Type.Object({
          grant_type: Type.Optional(Type.String({ maxLength: 100 })),
          client_assertion_type: Type.Optional(Type.String({ maxLength: 200 })),
          client_assertion: Type.Optional(Type.String({ maxLength: 8192 })),
          scope: Type.Optional(Type.String({ maxLength: 500 })),
        }),
        response: {
          200: Type.Object({
            access_token: Type.String(),
            token_type: Type.Literal('Bearer'),
            expires_in: Type.Integer(),
            scope: Type.String(),
          }),
          400: OAuthErrorBody,
          401: OAuthErrorBody,
        },
      },
      attachValidation: true,
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      try {
        if (request.validationError) throw new OAuthError('invalid_request', 'malformed token request')
        return await issueClientToken(ctx, {
          grantType: request.body.grant_type,
          assertionType: request.body.client_assertion_type,
          assertion: request.body.client_assertion,
          scope: request.body.scope,
          tokenEndpoint: requestHtu(request),
          issuer: issuerOf(ctx, request),
        })
      } catch (error) {
        if (!(error instanceof OAuthError)) throw error
        return reply.status(error.status).send({ error: error.error, error_description: error.description })
      }
    },
  )
}
