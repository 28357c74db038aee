import { AuditEventList, AuditEventQuery } from '@strongroom/sdk/protocol'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { principalOf } from '../platform/http/request.ts'
import { problemResponses } from '../platform/http/schemas.ts'
import { toAuditEventView } from './event-view.ts'

export async function auditRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/audit/events',
    {
      config: { access: allow.staff('audit:read') },
      schema: {
        summary: "The tenant's audit log, in chain order (verify it with `strongroom audit verify`)",
        tags: ['audit'],
        querystring: AuditEventQuery,
        response: { 200: AuditEventList, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const rows = await ctx.db
        .selectFrom('audit_events')
        .selectAll()
        .where('tenant_id', '=', principalOf(request).tenantId)
        .where('seq', '>', request.query.after ?? 0)
        .orderBy('seq')
        .limit(request.query.limit ?? 100)
        .execute()
      return { events: rows.map(toAuditEventView) }
    },
  )
}
