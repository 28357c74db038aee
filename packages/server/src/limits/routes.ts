import { RateLimitPolicy } from '@strongroom/sdk/protocol'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf } from '../platform/http/principal.ts'
import { principalOf } from '../platform/http/request.ts'
import { problemResponses } from '../platform/http/schemas.ts'
import { loadRateLimitPolicy, saveRateLimitPolicy } from './policy.ts'

export async function rateLimitRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/policies/rate-limits',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary:
          "The tenant's rate limits: requests a minute per device, customer and tenant; failed attempts at guesses",
        tags: ['tenancy'],
        response: { 200: RateLimitPolicy, ...problemResponses(401, 403) },
      },
    },
    async (request) => loadRateLimitPolicy(ctx, principalOf(request).tenantId),
  )

  app.put(
    '/v1/policies/rate-limits',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: 'Replace the rate limits (audited; every node applies them within five seconds)',
        tags: ['tenancy'],
        body: RateLimitPolicy,
        response: { 200: RateLimitPolicy, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      await saveRateLimitPolicy(ctx, principal.tenantId, request.body, actorOf(principal))
      return request.body
    },
  )
}
