import { Type } from '@sinclair/typebox'
import type { FastifyError } from 'fastify'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import { type App, toProblem } from '../platform/http/fastify.ts'
import { actorOf } from '../platform/http/principal.ts'
import type { Problem } from '../platform/http/problems.ts'
import { principalOf } from '../platform/http/request.ts'
import { roles } from '../platform/http/roles.ts'
import { idOf, oneOf, problemResponses } from '../platform/http/schemas.ts'
import { issuerOf } from './oauth-routes.ts'
import {
  createScimUser,
  deleteScimUser,
  getScimUser,
  listScimUsers,
  loadScimRolePolicy,
  patchScimUser,
  replaceScimUser,
  SCIM_ERROR_SCHEMA,
  ScimError,
  type ScimUserInput,
} from './scim.ts'
import { scimGroupRoutes } from './scim-group-routes.ts'
import { saveRoleMapping } from './scim-groups.ts'
import { scimAccess as access, SCIM, ScimPage, ScimPatchBody, scimErrors } from './scim-http.ts'

const Text = Type.String({ minLength: 1, maxLength: 200 })
const ScimRole = Type.Object({ value: Text, primary: Type.Optional(Type.Boolean()) })

/**
 * A user as the identity provider sends it (RFC 7643 §4.1). Attributes Strongroom does not keep (name, emails…) are
 * let through and ignored, as identity providers send many; those it keeps are checked.
 */
const ScimUserBody = Type.Object({
  schemas: Type.Array(Type.String({ maxLength: 200 }), { maxItems: 10 }),
  userName: Text,
  externalId: Type.Optional(Type.Union([Text, Type.Null()])),
  displayName: Type.Optional(Type.Union([Text, Type.Null()])),
  active: Type.Optional(Type.Boolean()),
  roles: Type.Optional(Type.Array(ScimRole, { maxItems: 20 })),
})

const ScimUserSchema = Type.Object({
  schemas: Type.Array(Type.String()),
  id: Type.String(),
  externalId: Type.Optional(Type.String()),
  userName: Type.String(),
  displayName: Type.Optional(Type.String()),
  active: Type.Boolean(),
  roles: Type.Array(Type.Object({ value: Type.String(), primary: Type.Boolean() })),
  groups: Type.Optional(
    Type.Array(
      // `$ref` (the group's URL) is let through unnamed: a property of that name breaks the OpenAPI generator.
      Type.Object(
        { value: Type.String(), display: Type.String(), type: Type.Literal('direct') },
        { additionalProperties: true, description: "a group; `$ref` is the group's URL" },
      ),
      { description: 'read-only: change a group’s members to change them' },
    ),
  ),
  meta: Type.Object({
    resourceType: Type.Literal('User'),
    created: Type.String(),
    lastModified: Type.String(),
    location: Type.String(),
  }),
})

const UserId = Type.Object({ id: idOf('stf') })

function inputOf(body: {
  userName: string
  externalId?: string | null | undefined
  displayName?: string | null | undefined
  active?: boolean | undefined
  roles?: { value: string; primary?: boolean | undefined }[] | undefined
}): Omit<ScimUserInput, 'roles' | 'active'> & Partial<Pick<ScimUserInput, 'roles' | 'active'>> {
  return {
    userName: body.userName,
    externalId: body.externalId ?? undefined,
    displayName: body.displayName ?? undefined,
    active: body.active,
    roles: body.roles,
  }
}

/**
 * SCIM 2.0 `/scim/v2/Users` (RFC 7644) for the bank's identity provider, a bank backend holding staff:provision (or an
 * admin): it creates staff, changes their name and role, deactivates them (every token and stream ends on every node)
 * and deletes them. Answers and errors are `application/scim+json`, errors in SCIM's format.
 */
export async function scimRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.setErrorHandler((error: FastifyError | Problem | ScimError, request, reply) => {
    const scim = error instanceof ScimError ? error : scimErrorOf(toProblem(error as FastifyError | Problem))
    if (scim.status === 401) ctx.metrics.authFailures.inc({ reason: 'scim' })
    if (scim.status >= 500) request.log.error({ err: error }, 'SCIM request failed')
    reply
      .status(scim.status)
      .type(SCIM)
      .send({
        schemas: [SCIM_ERROR_SCHEMA],
        status: String(scim.status),
        ...(scim.scimType ? { scimType: scim.scimType } : {}),
        detail: scim.detail,
      })
  })
  app.addHook('onSend', async (_request, reply, payload) => {
    if (String(reply.getHeader('content-type') ?? '').startsWith('application/json'))
      reply.type(`${SCIM}; charset=utf-8`)
    return payload
  })

  await scimReadRoutes(app, ctx)
  await scimChangeRoutes(app, ctx)
  await scimPatchRoutes(app, ctx)
  await scimGroupRoutes(app, ctx)
}

/** Finding users. */
async function scimReadRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/scim/v2/Users',
    {
      config: access,
      schema: {
        summary: 'List or find staff (SCIM): filter `userName eq "…"` or `externalId eq "…"`',
        tags: ['scim'],
        querystring: Type.Object({
          filter: Type.Optional(Type.String({ maxLength: 300 })),
          ...ScimPage,
        }),
        response: {
          200: Type.Object({
            schemas: Type.Array(Type.String()),
            totalResults: Type.Integer(),
            startIndex: Type.Integer(),
            itemsPerPage: Type.Integer(),
            Resources: Type.Array(ScimUserSchema),
          }),
          ...scimErrors(400, 401, 403),
        },
      },
    },
    async (request) => {
      const { filter, startIndex = 1, count = 100 } = request.query
      const tenantId = principalOf(request).tenantId
      return listScimUsers(ctx, tenantId, { filter, startIndex, count }, issuerOf(ctx, request))
    },
  )

  app.get(
    '/scim/v2/Users/:id',
    {
      config: access,
      schema: {
        summary: 'A provisioned staff member (SCIM)',
        tags: ['scim'],
        params: UserId,
        response: { 200: ScimUserSchema, ...scimErrors(400, 401, 403, 404) },
      },
    },
    async (request) => getScimUser(ctx, principalOf(request).tenantId, request.params.id, issuerOf(ctx, request)),
  )
}

/** Creating and replacing users. */
async function scimChangeRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/scim/v2/Users',
    {
      config: access,
      schema: {
        summary: "Provision a staff member (SCIM); the role comes from `roles` through the tenant's mapping",
        tags: ['scim'],
        body: ScimUserBody,
        response: { 201: ScimUserSchema, ...scimErrors(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const input = inputOf(request.body)
      const user = await createScimUser(
        ctx,
        principal.tenantId,
        { ...input, active: input.active ?? true, roles: input.roles ?? [] },
        actorOf(principal),
        issuerOf(ctx, request),
      )
      return reply.status(201).header('location', user.meta.location).send(user)
    },
  )

  app.put(
    '/scim/v2/Users/:id',
    {
      config: access,
      schema: {
        summary: 'Replace a staff member (SCIM); `active: false` ends every token and stream on every node',
        tags: ['scim'],
        params: UserId,
        body: ScimUserBody,
        response: { 200: ScimUserSchema, ...scimErrors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const input = inputOf(request.body)
      return replaceScimUser(
        ctx,
        principal.tenantId,
        request.params.id,
        // What a replacement leaves out of active and roles stays: a PUT never reactivates a member by omission.
        (current) => ({ ...input, active: input.active ?? current.active, roles: input.roles ?? current.roles }),
        actorOf(principal),
        issuerOf(ctx, request),
      )
    },
  )
}

/** Changing users attribute by attribute (what identity providers mostly send), and deleting them. */
async function scimPatchRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.patch(
    '/scim/v2/Users/:id',
    {
      config: access,
      schema: {
        summary: 'Change a staff member (SCIM PatchOp); `active: false` ends every token and stream on every node',
        tags: ['scim'],
        params: UserId,
        body: ScimPatchBody,
        response: { 200: ScimUserSchema, ...scimErrors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      return replaceScimUser(
        ctx,
        principal.tenantId,
        request.params.id,
        (current) => patchScimUser(current, request.body.Operations),
        actorOf(principal),
        issuerOf(ctx, request),
      )
    },
  )

  app.delete(
    '/scim/v2/Users/:id',
    {
      config: access,
      schema: {
        summary: 'Delete a staff member (SCIM): deactivated and hidden from SCIM, kept for the audit log',
        tags: ['scim'],
        params: UserId,
        response: { 204: Type.Null(), ...scimErrors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      await deleteScimUser(ctx, principal.tenantId, request.params.id, actorOf(principal))
      return reply.status(204).send(null)
    },
  )
}

/** A problem as SCIM states it: a request the schema refuses is invalidValue, bad JSON invalidSyntax. */
function scimErrorOf(problem: Problem): { status: number; scimType?: string; detail: string } {
  const detail = problem.detail ?? problem.message
  if (problem.kind === 'request/malformed-json') return { status: 400, scimType: 'invalidSyntax', detail }
  if (problem.kind === 'request/invalid') return { status: 400, scimType: 'invalidValue', detail }
  return { status: problem.status, detail }
}

const ScimRolePolicy = Type.Object(
  {
    roles: Type.Record(Type.String({ minLength: 1, maxLength: 200 }), oneOf(roles), {
      maxProperties: 100,
      description: "the identity provider's role values (SCIM roles[].value), each with the role it stands for",
    }),
  },
  { additionalProperties: false },
)

/** Which of the identity provider's role values stand for which role. */
export async function scimRolePolicyRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/policies/scim-roles',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: "How the identity provider's role values map to roles (SCIM provisioning)",
        tags: ['tenancy'],
        response: { 200: ScimRolePolicy, ...problemResponses(401, 403) },
      },
    },
    async (request) => loadScimRolePolicy(ctx, principalOf(request).tenantId),
  )

  app.put(
    '/v1/policies/scim-roles',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: "Replace the mapping of the identity provider's role values to roles (audited)",
        tags: ['tenancy'],
        body: ScimRolePolicy,
        response: { 200: ScimRolePolicy, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      await saveRoleMapping(ctx, principal.tenantId, request.body, actorOf(principal))
      return request.body
    },
  )
}
