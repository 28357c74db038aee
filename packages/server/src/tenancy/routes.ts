import { Type } from '@sinclair/typebox'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { principalOf } from '../platform/http/request.ts'
import { roles, scopes } from '../platform/http/roles.ts'
import { idOf, oneOf, problemResponses } from '../platform/http/schemas.ts'
import { createStaff, findStaff, issueStaffToken, listStaff } from './staff.ts'

const Role = oneOf(roles)
const ScopeSchema = oneOf(scopes)
const StaffSchema = Type.Object({ id: Type.String(), tenantId: Type.String(), name: Type.String(), role: Role })

export async function tenancyRoutes(app: App, ctx: ServerContext): Promise<void> {
  await meRoutes(app)
  await staffRoutes(app, ctx)
}

/** Who the caller is. */
async function meRoutes(app: App): Promise<void> {
  app.get(
    '/v1/me',
    {
      config: { access: allow.authenticated },
      schema: {
        summary: 'Who the credentials stand for',
        tags: ['tenancy'],
        response: {
          200: Type.Object({
            kind: Type.Union([Type.Literal('staff'), Type.Literal('device'), Type.Literal('client')]),
            tenantId: Type.String(),
            staffId: Type.Optional(Type.String()),
            role: Type.Optional(Role),
            scopes: Type.Optional(Type.Array(Type.String())),
            deviceId: Type.Optional(Type.String()),
            customerId: Type.Optional(Type.String()),
            clientId: Type.Optional(Type.String()),
          }),
          ...problemResponses(401),
        },
      },
    },
    async (request) => {
      const p = principalOf(request)
      switch (p.kind) {
        case 'staff':
          return { kind: p.kind, tenantId: p.tenantId, staffId: p.staffId, role: p.role, scopes: [...p.scopes] }
        case 'client':
          return { kind: p.kind, tenantId: p.tenantId, clientId: p.clientId, scopes: [...p.scopes] }
        case 'device':
          return { kind: p.kind, tenantId: p.tenantId, deviceId: p.deviceId, customerId: p.customerId }
      }
    },
  )
}

/** Staff members and their tokens. */
async function staffRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/staff',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: 'Add a staff member to the tenant',
        tags: ['tenancy'],
        body: Type.Object(
          { name: Type.String({ minLength: 1, maxLength: 100 }), role: Role },
          { additionalProperties: false },
        ),
        response: { 201: StaffSchema, ...problemResponses(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const staff = await createStaff(ctx, principal.tenantId, request.body, actorOf(principal))
      return reply.status(201).send(staff)
    },
  )

  app.get(
    '/v1/staff',
    {
      config: { access: allow.staff('conversations:assign') },
      schema: {
        summary: "The tenant's staff members, by name: whom a supervisor can give a conversation to",
        tags: ['tenancy'],
        response: { 200: Type.Object({ staff: Type.Array(StaffSchema) }), ...problemResponses(401, 403) },
      },
    },
    async (request) => ({ staff: await listStaff(ctx, principalOf(request).tenantId) }),
  )

  app.post(
    '/v1/staff/:staffId/tokens',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: 'Issue an API token for a staff member (shown once)',
        tags: ['tenancy'],
        params: Type.Object({ staffId: idOf('stf') }),
        body: Type.Object(
          {
            ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 90 * 86400 })),
            scopes: Type.Optional(Type.Array(ScopeSchema, { minItems: 1, uniqueItems: true })),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            token: Type.String(),
            tokenId: Type.String(),
            scopes: Type.Array(Type.String()),
            expiresAt: Type.String(),
          }),
          ...problemResponses(400, 401, 403, 404),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const staff = await findStaff(ctx, principal.tenantId, { id: request.params.staffId })
      if (!staff) throw new Problem('request/not-found', 'no such staff member')
      const issued = await issueStaffToken(
        ctx,
        staff,
        { ttlSeconds: request.body.ttlSeconds ?? 8 * 3600, scopes: request.body.scopes },
        actorOf(principal),
      )
      return reply.status(201).header('cache-control', 'no-store').send(issued)
    },
  )
}
