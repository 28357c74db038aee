import type { AccessRule } from './access-rule.ts'
import { scopes } from './roles.ts'

/** The credentials the API takes, as the OpenAPI document names them. */
export const securitySchemes = {
  staffToken: { type: 'http', scheme: 'bearer', description: 'Staff API token (srs_…)' },
  clientToken: {
    type: 'oauth2',
    description: 'A bank backend’s access token (client credentials with private_key_jwt, RFC 7523)',
    flows: {
      clientCredentials: {
        tokenUrl: '/v1/oauth/token',
        scopes: Object.fromEntries(scopes.map((scope) => [scope, scope])),
      },
    },
  },
  deviceToken: {
    type: 'http',
    scheme: 'DPoP',
    description: 'Device access token (srd_…) with a DPoP proof header (RFC 9449)',
  },
  dpopProof: {
    type: 'apiKey',
    in: 'header',
    name: 'DPoP',
    description: 'A DPoP proof alone (RFC 9449): the key it carries is what enrols or renews a device',
  },
} as const

type SecurityRequirement = Partial<Record<keyof typeof securitySchemes, string[]>>

/** Which credentials a route's access rule accepts, as an OpenAPI security requirement (empty: public). */
export function openApiSecurity(access: AccessRule): SecurityRequirement[] {
  const staff = { staffToken: [] }
  const device = { deviceToken: [] }
  const client = (scope?: string) => ({ clientToken: scope ? [scope] : [] })
  switch (access.who) {
    case 'anyone':
      return []
    case 'device-key':
      return [{ dpopProof: [] }]
    case 'stream':
    case 'member':
      return [staff, device]
    case 'staff':
      // Requirements are alternatives (OpenAPI 3 §4.8.30): a client token holding any one of the scopes.
      return [staff, ...[access.scope, ...(access.or ?? [])].map((scope) => client(scope))]
    case 'any':
      return [staff, client(access.scope), device]
    case 'device':
    case 'attested-device':
      return [device]
    case 'staff-member':
      return [staff]
    case 'authenticated':
      return [staff, client(), device]
  }
}

/** A stable operation id from the route: `POST /v1/consents/:consentId/approve` → `postV1ConsentsConsentIdApprove`. */
export function operationIdOf(method: string, url: string): string {
  const words = url.split(/[^A-Za-z0-9]+/).filter(Boolean)
  return method.toLowerCase() + words.map((word) => word[0]?.toUpperCase() + word.slice(1)).join('')
}

/**
 * The route's schema as the OpenAPI document shows it: its security from the access rule, an operation id, and its
 * error responses as `application/problem+json` (what the server sends; Fastify's own serialization is unchanged).
 */
export function documentedSchema(
  schema: Record<string, unknown> | undefined,
  route: { method: string | string[]; url: string; config?: { access?: AccessRule } },
): Record<string, unknown> | undefined {
  if (!schema || schema.hide) return schema
  const method = Array.isArray(route.method) ? (route.method[0] as string) : route.method
  const responses = Object.entries((schema.response ?? {}) as Record<string, Record<string, unknown>>).map(
    ([status, response]) => {
      if (Number(status) < 400) return [status, response]
      const { description, ...problem } = response
      return [status, { description, content: { 'application/problem+json': { schema: problem } } }]
    },
  )
  return {
    ...schema,
    operationId: operationIdOf(method, route.url),
    ...(route.config?.access && { security: openApiSecurity(route.config.access) }),
    ...(schema.response !== undefined && { response: Object.fromEntries(responses) }),
  }
}
