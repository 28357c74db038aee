import { Type } from '@sinclair/typebox'
import { PresenceChange, StaffPresenceList } from '@strongroom/sdk/protocol'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { Problem } from '../platform/http/problems.ts'
import { principalOf } from '../platform/http/request.ts'
import { problemResponses } from '../platform/http/schemas.ts'
import { listPresence, setAway } from './presence.ts'

/** Staff presence: supervisors read it where they hand conversations over; each staff member sets their own Away. */
export async function presenceRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/staff/presence',
    {
      config: { access: allow.staff('conversations:assign') },
      schema: {
        summary:
          "Whether each of the tenant's staff members who can work (active, holding a role) is available, away or offline",
        tags: ['tenancy'],
        response: {
          200: StaffPresenceList,
          ...problemResponses(401, 403),
        },
      },
    },
    async (request) => ({ staff: await listPresence(ctx, principalOf(request).tenantId) }),
  )

  app.put(
    '/v1/staff/me/presence',
    {
      config: { access: allow.staff('conversations:write') },
      schema: {
        summary: 'Say you are away (or back): supervisors see it; audited',
        tags: ['tenancy'],
        body: PresenceChange,
        response: { 204: Type.Null(), ...problemResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      if (principal.kind !== 'staff') throw new Problem('auth/forbidden')
      await setAway(ctx, principal, request.body.away)
      return reply.status(204).send(null)
    },
  )
}
