import { Type } from '@sinclair/typebox'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { principalOf } from '../platform/http/request.ts'
import { problemResponses } from '../platform/http/schemas.ts'
import { toAuditEventView } from './event-view.ts'

/** Exported for the data subject export, which also lists events not chained yet (their seq and hash are null). */
export const AuditEventSchema = Type.Object({
  seq: Type.Union([Type.Integer(), Type.Null()]),
  occurredAt: Type.String(),
  actor: Type.Object({ kind: Type.String(), id: Type.Union([Type.String(), Type.Null()]) }),
  action: Type.String(),
  target: Type.Union([Type.Object({ kind: Type.String(), id: Type.Union([Type.String(), Type.Null()]) }), Type.Null()]),
  outcome: Type.String(),
  reason: Type.Union([Type.String(), Type.Null()]),
  details: Type.Record(Type.String(), Type.Unknown()),
  hash: Type.Union([Type.String(), Type.Null()], { description: 'hex SHA-256 linking this record to the one before' }),
})

export async function auditRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/audit/events',
    {
      config: { access: allow.staff('audit:read') },
      schema: {
        summary: "The tenant's audit log, in chain order (verify it with `strongroom audit verify`)",
        tags: ['audit'],
        querystring: Type.Object(
          {
            after: Type.Optional(Type.Integer({ minimum: 0 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ events: Type.Array(AuditEventSchema) }), ...problemResponses(400, 401, 403) },
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
