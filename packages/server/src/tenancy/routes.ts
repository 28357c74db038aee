import { Type } from '@sinclair/typebox'
import {
  IssuedStaffInvitation,
  IssuedStaffToken,
  Me,
  NewStaffMember,
  StaffInvitationRequest,
  StaffList,
  StaffMember,
  StaffTokenPolicy,
  StaffTokenRequest,
} from '@strongroom/sdk/protocol'
import { IdempotencyKeyHeaders, idempotent } from '../idempotency/idempotency.ts'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { principalOf } from '../platform/http/request.ts'
import { idOf, problemResponses } from '../platform/http/schemas.ts'
import { issuerOf } from './oauth-routes.ts'
import { findStaff, issueStaffToken, listStaff, loadStaffTokenPolicy, saveStaffTokenPolicy } from './staff.ts'
import { inviteStaff, STAFF_INVITATION_TTL_SECONDS } from './staff-invitations.ts'
import { addStaff, changeStaffActive, endStaffToken } from './staff-lifecycle.ts'

export async function tenancyRoutes(app: App, ctx: ServerContext): Promise<void> {
  await meRoutes(app)
  await staffRoutes(app, ctx)
  await staffInvitationRoutes(app, ctx)
  await staffLifecycleRoutes(app, ctx)
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
        response: { 200: Me, ...problemResponses(401) },
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
        body: NewStaffMember,
        headers: IdempotencyKeyHeaders,
        response: { 201: StaffMember, ...problemResponses(400, 401, 403, 409, 422) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      return idempotent(ctx, request, reply, 201, (scoped) =>
        addStaff(scoped, principal.tenantId, request.body, actorOf(principal)),
      )
    },
  )

  app.get(
    '/v1/staff',
    {
      config: { access: allow.staff('conversations:assign') },
      schema: {
        summary: "The tenant's staff members, by name: whom a supervisor can give a conversation to",
        tags: ['tenancy'],
        response: { 200: StaffList, ...problemResponses(401, 403) },
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
        body: StaffTokenRequest,
        headers: IdempotencyKeyHeaders,
        response: {
          201: IssuedStaffToken,
          ...problemResponses(400, 401, 403, 404, 409, 422),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const staff = await findStaff(ctx, principal.tenantId, { id: request.params.staffId })
      if (!staff) throw new Problem('request/not-found', 'no such staff member')
      const lifetime = { ttlSeconds: request.body.ttlSeconds ?? 8 * 3600, scopes: request.body.scopes }
      reply.header('cache-control', 'no-store')
      return idempotent(ctx, request, reply, 201, (scoped) =>
        issueStaffToken(scoped, staff, lifetime, actorOf(principal)),
      )
    },
  )
}

/** A single-use link with which a staff member enrols a passkey, in place of a token to paste. */
async function staffInvitationRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/staff/:staffId/invitations',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary:
          'Invite a staff member to enrol a passkey: a single-use, short-lived console link (shown once; replaces earlier ones)',
        tags: ['tenancy'],
        params: Type.Object({ staffId: idOf('stf') }),
        body: StaffInvitationRequest,
        headers: IdempotencyKeyHeaders,
        response: {
          201: IssuedStaffInvitation,
          ...problemResponses(400, 401, 403, 404, 409, 422),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const staff = await findStaff(ctx, principal.tenantId, { id: request.params.staffId })
      if (!staff) throw new Problem('request/not-found', 'no such staff member')
      const ttlSeconds = request.body.ttlSeconds ?? STAFF_INVITATION_TTL_SECONDS
      const link = { ttlSeconds, consoleBase: issuerOf(ctx, request) }
      reply.header('cache-control', 'no-store')
      return idempotent(ctx, request, reply, 201, (scoped) => inviteStaff(scoped, staff, link, actorOf(principal)))
    },
  )
}

/** Ending staff access: one token, or every token of a member who is deactivated; and how long tokens may live. */
async function staffLifecycleRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/staff/:staffId/tokens/:tokenId/revoke',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: "Revoke one of a staff member's tokens: refused at once on every node, its streams closed (audited)",
        tags: ['tenancy'],
        params: Type.Object({ staffId: idOf('stf'), tokenId: idOf('stk') }),
        response: { 204: Type.Null(), ...problemResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const { staffId, tokenId } = request.params
      await endStaffToken(ctx, principal.tenantId, { staffId, tokenId }, actorOf(principal))
      return reply.status(204).send(null)
    },
  )

  for (const [action, active] of [
    ['deactivate', false],
    ['activate', true],
  ] as const) {
    app.post(
      `/v1/staff/:staffId/${action}`,
      {
        config: { access: allow.staff('staff:admin') },
        schema: {
          summary: active
            ? 'Make a deactivated staff member active again (audited); they need new tokens'
            : "Deactivate a staff member: every token and console session ends at once on every node (audited); never the bank's last active admin",
          tags: ['tenancy'],
          params: Type.Object({ staffId: idOf('stf') }),
          response: { 200: StaffMember, ...problemResponses(401, 403, 404, 409) },
        },
      },
      async (request) => {
        const principal = principalOf(request)
        return changeStaffActive(ctx, principal.tenantId, request.params.staffId, active, actorOf(principal))
      },
    )
  }

  app.get(
    '/v1/policies/staff-tokens',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: 'How long staff tokens may live in this tenant',
        tags: ['tenancy'],
        response: { 200: StaffTokenPolicy, ...problemResponses(401, 403) },
      },
    },
    async (request) => loadStaffTokenPolicy(ctx, principalOf(request).tenantId),
  )

  app.put(
    '/v1/policies/staff-tokens',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: 'Replace the staff token lifetime limit (audited); applies to tokens issued from now on',
        tags: ['tenancy'],
        body: StaffTokenPolicy,
        response: { 200: StaffTokenPolicy, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      await saveStaffTokenPolicy(ctx, principal.tenantId, request.body, actorOf(principal))
      return request.body
    },
  )
}
