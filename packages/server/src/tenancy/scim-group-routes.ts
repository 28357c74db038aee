import { Type } from '@sinclair/typebox'
import type { ServerContext } from '../platform/context.ts'
import type { App } from '../platform/http/fastify.ts'
import { idOf } from '../platform/http/schemas.ts'
import {
  changeScimGroup,
  createScimGroup,
  deleteScimGroup,
  getScimGroup,
  listScimGroups,
  patchScimGroup,
  type ScimGroupInput,
} from './scim-groups.ts'
import {
  ScimPage,
  scimCaller,
  scimListOf,
  scimMetaOf,
  scimReferenceTo,
  scimRoute,
  scimWriteRoutes,
  ScimText as Text,
} from './scim-http.ts'

/** A group as the identity provider sends it (RFC 7643 §4.2); what else it sends (`meta`, `$ref`…) is ignored. */
const ScimGroupBody = Type.Object({
  schemas: Type.Array(Type.String({ maxLength: 200 }), { maxItems: 10 }),
  displayName: Text,
  externalId: Type.Optional(Type.Union([Text, Type.Null()])),
  members: Type.Optional(
    Type.Array(Type.Object({ value: Type.String({ minLength: 1, maxLength: 100 }) }), { maxItems: 10_000 }),
  ),
})

const ScimGroupSchema = Type.Object({
  schemas: Type.Array(Type.String()),
  id: Type.String(),
  externalId: Type.Optional(Type.String()),
  displayName: Type.String(),
  members: Type.Optional(Type.Array(scimReferenceTo('User', "a member; `$ref` is the user's URL"))),
  meta: scimMetaOf('Group'),
})

const GroupId = Type.Object({ id: idOf('grp') })
/** Entra ID asks for groups without their members (`excludedAttributes=members`); the answer leaves them out. */
const Exclusion = { excludedAttributes: Type.Optional(Type.String({ maxLength: 200 })) }
const withMembers = (excluded: string | undefined) =>
  !(excluded ?? '').split(',').some((attribute) => attribute.trim().toLowerCase() === 'members')

const inputOf = (body: {
  displayName: string
  externalId?: string | null | undefined
  members?: { value: string }[] | undefined
}): ScimGroupInput => ({
  displayName: body.displayName,
  externalId: body.externalId ?? undefined,
  members: (body.members ?? []).map((member) => member.value),
})

/**
 * SCIM 2.0 `/scim/v2/Groups` (RFC 7644) for the bank's identity provider: groups and their members, whose roles follow
 * them through the tenant's mapping (`PUT /v1/policies/scim-roles`, by display name or external id). A member who
 * loses a role loses the tokens and streams that relied on it at once. Registered in the SCIM scope, whose error
 * handler answers in SCIM's format.
 */
export async function scimGroupRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/scim/v2/Groups',
    scimRoute(
      'List or find groups (SCIM): filter `displayName eq "…"` or `externalId eq "…"`',
      {
        querystring: Type.Object({ filter: Type.Optional(Type.String({ maxLength: 300 })), ...ScimPage, ...Exclusion }),
      },
      { 200: scimListOf(ScimGroupSchema) },
      [400, 401, 403],
    ),
    async (request) => {
      const { filter, startIndex = 1, count = 100, excludedAttributes } = request.query
      const { tenantId, base } = scimCaller(ctx, request)
      const query = { filter, startIndex, count, withMembers: withMembers(excludedAttributes) }
      return listScimGroups(ctx, tenantId, query, base)
    },
  )

  app.get(
    '/scim/v2/Groups/:id',
    scimRoute(
      'A group and its members (SCIM)',
      { params: GroupId, querystring: Type.Object(Exclusion) },
      { 200: ScimGroupSchema },
      [400, 401, 403, 404],
    ),
    async (request) => {
      const { tenantId, base } = scimCaller(ctx, request)
      return getScimGroup(ctx, tenantId, request.params.id, base, withMembers(request.query.excludedAttributes))
    },
  )

  await scimWriteRoutes(app, ctx, {
    path: '/scim/v2/Groups',
    idPrefix: 'grp',
    Body: ScimGroupBody,
    Resource: ScimGroupSchema,
    summaries: {
      create: "Create a group (SCIM); its members take the role the tenant's mapping gives it",
      replace: 'Replace a group (SCIM), its members included; a member who loses a role loses its tokens at once',
      patch: 'Change a group (SCIM PatchOp): add, remove or replace members, rename; roles follow at once',
      delete: 'Delete a group (SCIM): its members lose the role it gave them, and the tokens that relied on it',
    },
    inputOf,
    create: ({ tenantId, actor, base }, input) => createScimGroup(ctx, tenantId, input, actor, base),
    change: ({ tenantId, actor, base }, id, next) => changeScimGroup(ctx, tenantId, id, next, actor, base),
    patch: patchScimGroup,
    remove: ({ tenantId, actor }, id) => deleteScimGroup(ctx, tenantId, id, actor),
  })
}
