import { Type } from '@sinclair/typebox'
import type { ServerContext } from '../platform/context.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf } from '../platform/http/principal.ts'
import { principalOf } from '../platform/http/request.ts'
import { idOf } from '../platform/http/schemas.ts'
import { issuerOf } from './oauth-routes.ts'
import {
  changeScimGroup,
  createScimGroup,
  deleteScimGroup,
  getScimGroup,
  listScimGroups,
  patchScimGroup,
  type ScimGroupInput,
} from './scim-groups.ts'
import { scimAccess as access, ScimPage, ScimPatchBody, scimErrors } from './scim-http.ts'

const Text = Type.String({ minLength: 1, maxLength: 200 })

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
  members: Type.Optional(
    Type.Array(
      // `$ref` (the member's URL) is let through unnamed: a property of that name breaks the OpenAPI generator.
      Type.Object(
        { value: Type.String(), display: Type.String(), type: Type.Literal('User') },
        { additionalProperties: true, description: "a member; `$ref` is the user's URL" },
      ),
    ),
  ),
  meta: Type.Object({
    resourceType: Type.Literal('Group'),
    created: Type.String(),
    lastModified: Type.String(),
    location: Type.String(),
  }),
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
    {
      config: access,
      schema: {
        summary: 'List or find groups (SCIM): filter `displayName eq "…"` or `externalId eq "…"`',
        tags: ['scim'],
        querystring: Type.Object({ filter: Type.Optional(Type.String({ maxLength: 300 })), ...ScimPage, ...Exclusion }),
        response: {
          200: Type.Object({
            schemas: Type.Array(Type.String()),
            totalResults: Type.Integer(),
            startIndex: Type.Integer(),
            itemsPerPage: Type.Integer(),
            Resources: Type.Array(ScimGroupSchema),
          }),
          ...scimErrors(400, 401, 403),
        },
      },
    },
    async (request) => {
      const { filter, startIndex = 1, count = 100, excludedAttributes } = request.query
      const query = { filter, startIndex, count, withMembers: withMembers(excludedAttributes) }
      return listScimGroups(ctx, principalOf(request).tenantId, query, issuerOf(ctx, request))
    },
  )

  app.get(
    '/scim/v2/Groups/:id',
    {
      config: access,
      schema: {
        summary: 'A group and its members (SCIM)',
        tags: ['scim'],
        params: GroupId,
        querystring: Type.Object(Exclusion),
        response: { 200: ScimGroupSchema, ...scimErrors(400, 401, 403, 404) },
      },
    },
    async (request) =>
      getScimGroup(
        ctx,
        principalOf(request).tenantId,
        request.params.id,
        issuerOf(ctx, request),
        withMembers(request.query.excludedAttributes),
      ),
  )

  app.post(
    '/scim/v2/Groups',
    {
      config: access,
      schema: {
        summary: "Create a group (SCIM); its members take the role the tenant's mapping gives it",
        tags: ['scim'],
        body: ScimGroupBody,
        response: { 201: ScimGroupSchema, ...scimErrors(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const group = await createScimGroup(
        ctx,
        principal.tenantId,
        inputOf(request.body),
        actorOf(principal),
        issuerOf(ctx, request),
      )
      return reply.status(201).header('location', group.meta.location).send(group)
    },
  )

  app.put(
    '/scim/v2/Groups/:id',
    {
      config: access,
      schema: {
        summary: 'Replace a group (SCIM), its members included; a member who loses a role loses its tokens at once',
        tags: ['scim'],
        params: GroupId,
        body: ScimGroupBody,
        response: { 200: ScimGroupSchema, ...scimErrors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const next = inputOf(request.body)
      return changeScimGroup(
        ctx,
        principal.tenantId,
        request.params.id,
        () => next,
        actorOf(principal),
        issuerOf(ctx, request),
      )
    },
  )

  app.patch(
    '/scim/v2/Groups/:id',
    {
      config: access,
      schema: {
        summary: 'Change a group (SCIM PatchOp): add, remove or replace members, rename; roles follow at once',
        tags: ['scim'],
        params: GroupId,
        body: ScimPatchBody,
        response: { 200: ScimGroupSchema, ...scimErrors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      return changeScimGroup(
        ctx,
        principal.tenantId,
        request.params.id,
        (current) => patchScimGroup(current, request.body.Operations),
        actorOf(principal),
        issuerOf(ctx, request),
      )
    },
  )

  app.delete(
    '/scim/v2/Groups/:id',
    {
      config: access,
      schema: {
        summary: 'Delete a group (SCIM): its members lose the role it gave them, and the tokens that relied on it',
        tags: ['scim'],
        params: GroupId,
        response: { 204: Type.Null(), ...scimErrors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      await deleteScimGroup(ctx, principal.tenantId, request.params.id, actorOf(principal))
      return reply.status(204).send(null)
    },
  )
}
