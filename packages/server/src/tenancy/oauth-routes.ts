import {
  ApiClient,
  AuthorizationServerMetadata,
  ClientToken,
  ClientTokenRequest,
  NewApiClient,
  OAuthErrorBody,
} from '@strongroom/sdk/protocol'
import type { FastifyRequest } from 'fastify'
import { IdempotencyKeyHeaders, idempotent } from '../idempotency/idempotency.ts'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { acceptFormBodies } from '../platform/http/form-body.ts'
import { actorOf } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { addressedUrl, principalOf } from '../platform/http/request.ts'
import { problemResponses } from '../platform/http/schemas.ts'
import { ASSERTION_ALGORITHMS, issueClientToken, OAuthError, registerApiClient } from './api-clients.ts'

export async function oauthRoutes(app: App, ctx: ServerContext): Promise<void> {
  await metadataRoutes(app, ctx)
  await apiClientRoutes(app, ctx)
  // The token endpoint speaks OAuth 2.0 as RFC 6749 defines it: a form-encoded request, and errors in the
  // protocol's own JSON format rather than problem documents, so that standard OAuth clients work unchanged.
  await app.register(async (scope: App) => tokenRoutes(scope, ctx))
}

/**
 * This server's issuer identifier (RFC 8414) and the base of every URL it gives out: its public URL. Only dev runs
 * without one (production requires it), and there the origin the client addressed stands in: the Host header, which
 * whoever sends the request chooses, so never where a public URL is set.
 */
export function issuerOf(ctx: ServerContext, request: FastifyRequest): string {
  return ctx.config.publicUrl ?? new URL(addressedUrl(request)).origin
}

/** The token endpoint, the audience a client assertion names (RFC 7523 §3): on the issuer, never from the Host header. */
const tokenEndpointOf = (ctx: ServerContext, request: FastifyRequest) => `${issuerOf(ctx, request)}/v1/oauth/token`

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
          200: AuthorizationServerMetadata,
        },
      },
    },
    async (request) => {
      const issuer = issuerOf(ctx, request)
      return {
        issuer,
        token_endpoint: tokenEndpointOf(ctx, request),
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
        body: NewApiClient,
        headers: IdempotencyKeyHeaders,
        response: {
          201: ApiClient,
          ...problemResponses(400, 401, 403, 409, 422),
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
      const tokenEndpoint = tokenEndpointOf(ctx, request)
      return idempotent(ctx, request, reply, 201, async (scoped) => ({
        ...(await registerApiClient(scoped, principal.tenantId, request.body, actorOf(principal))),
        tokenEndpoint,
      }))
    },
  )
}

/** The token endpoint, in a scope of its own: it alone parses form-encoded bodies. */
async function tokenRoutes(scope: App, ctx: ServerContext): Promise<void> {
  acceptFormBodies(scope)
  scope.post(
    '/v1/oauth/token',
    {
      config: { access: allow.anyone, guesses: 'oauth-token' },
      schema: {
        summary: 'OAuth 2.0 token endpoint: client_credentials with private_key_jwt (RFC 7523)',
        tags: ['tenancy'],
        consumes: ['application/x-www-form-urlencoded'],
        body: ClientTokenRequest,
        response: {
          200: ClientToken,
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
          tokenEndpoint: tokenEndpointOf(ctx, request),
          issuer: issuerOf(ctx, request),
        })
      } catch (error) {
        if (!(error instanceof OAuthError)) throw error
        return reply.status(error.status).send({ error: error.error, error_description: error.description })
      }
    },
  )
}
