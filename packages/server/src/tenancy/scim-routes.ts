import { type Static, Type } from '@sinclair/typebox'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf } from '../platform/http/principal.ts'
import { principalOf } from '../platform/http/request.ts'
import { roles } from '../platform/http/roles.ts'
import { idOf, oneOf, problemResponses } from '../platform/http/schemas.ts'
import {
  createScimUser,
  deleteScimUser,
  getScimUser,
  listScimUsers,
  loadScimRolePolicy,
  patchScimUser,
  replaceScimUser,
  type ScimUserInput,
} from './scim.ts'
import { scimGroupRoutes } from './scim-group-routes.ts'
import { saveRoleMapping } from './scim-groups.ts'
import {
  answerAsScim,
  ScimPage,
  scimCaller,
  scimListOf,
  scimMetaOf,
  scimReferenceTo,
  scimRoute,
  scimWriteRoutes,
  ScimText as Text,
} from './scim-http.ts'

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
    Type.Array(scimReferenceTo('direct', "a group; `$ref` is the group's URL"), {
      description: 'read-only: change a group’s members to change them',
    }),
  ),
  meta: scimMetaOf('User'),
})

const UserId = Type.Object({ id: idOf('stf') })

/**
 * What a user's POST or PUT sets. What a replacement leaves out of active and roles stays: a PUT never reactivates a
 * member by omission. A new user is active, and without roles until a group gives them one.
 */
function inputOf(body: Static<typeof ScimUserBody>, current?: ScimUserInput): ScimUserInput {
  return {
    userName: body.userName,
    externalId: body.externalId ?? undefined,
    displayName: body.displayName ?? undefined,
    active: body.active ?? current?.active ?? true,
    roles: body.roles ?? current?.roles ?? [],
  }
}

/**
 * SCIM 2.0 `/scim/v2/Users` (RFC 7644) for the bank's identity provider, a bank backend holding staff:provision (or an
 * admin): it creates staff, changes their name and role, deactivates them (every token and stream ends on every node)
 * and deletes them. Answers and errors are `application/scim+json`, errors in SCIM's format.
 */
export async function scimRoutes(app: App, ctx: ServerContext): Promise<void> {
  answerAsScim(app, ctx)
  await scimReadRoutes(app, ctx)
  await scimUserWriteRoutes(app, ctx)
  await scimGroupRoutes(app, ctx)
}

/** Finding users. */
async function scimReadRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/scim/v2/Users',
    scimRoute(
      'List or find staff (SCIM): filter `userName eq "…"` or `externalId eq "…"`',
      { querystring: Type.Object({ filter: Type.Optional(Type.String({ maxLength: 300 })), ...ScimPage }) },
      { 200: scimListOf(ScimUserSchema) },
      [400, 401, 403],
    ),
    async (request) => {
      const { filter, startIndex = 1, count = 100 } = request.query
      const { tenantId, base } = scimCaller(ctx, request)
      return listScimUsers(ctx, tenantId, { filter, startIndex, count }, base)
    },
  )

  app.get(
    '/scim/v2/Users/:id',
    scimRoute('A provisioned staff member (SCIM)', { params: UserId }, { 200: ScimUserSchema }, [400, 401, 403, 404]),
    async (request) => {
      const { tenantId, base } = scimCaller(ctx, request)
      return getScimUser(ctx, tenantId, request.params.id, base)
    },
  )
}

/** Creating, replacing, changing and deleting users. */
async function scimUserWriteRoutes(app: App, ctx: ServerContext): Promise<void> {
  await scimWriteRoutes(app, ctx, {
    path: '/scim/v2/Users',
    idPrefix: 'stf',
    Body: ScimUserBody,
    Resource: ScimUserSchema,
    summaries: {
      create: "Provision a staff member (SCIM); the role comes from `roles` through the tenant's mapping",
      replace: 'Replace a staff member (SCIM); `active: false` ends every token and stream on every node',
      patch: 'Change a staff member (SCIM PatchOp); `active: false` ends every token and stream on every node',
      delete:
        'Delete a staff member (SCIM): deactivated and hidden from SCIM and the staff list, kept for the audit log',
    },
    inputOf,
    create: ({ tenantId, actor, base }, input) => createScimUser(ctx, tenantId, input, actor, base),
    change: ({ tenantId, actor, base }, id, next) => replaceScimUser(ctx, tenantId, id, next, actor, base),
    patch: patchScimUser,
    remove: ({ tenantId, actor }, id) => deleteScimUser(ctx, tenantId, id, actor),
  })
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
