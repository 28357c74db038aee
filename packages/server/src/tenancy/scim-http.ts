import { type Static, type TSchema, Type } from '@sinclair/typebox'
import type { FastifyError, FastifyRequest } from 'fastify'
import type { Actor } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import { type App, toProblem } from '../platform/http/fastify.ts'
import { actorOf } from '../platform/http/principal.ts'
import type { Problem } from '../platform/http/problems.ts'
import { principalOf } from '../platform/http/request.ts'
import { idOf } from '../platform/http/schemas.ts'
import { issuerOf } from './oauth-routes.ts'
import { SCIM_ERROR_SCHEMA, SCIM_PATCH_SCHEMA, ScimError, type ScimPatchOperation } from './scim.ts'

/** What the SCIM routes (users and groups) share: their media type and error format, who may call them, their bodies. */
export const SCIM = 'application/scim+json'

/**
 * Makes a scope answer as SCIM does (RFC 7644 §3.12): every error, a Problem or a refused request included, in SCIM's
 * error format, and every answer `application/scim+json`.
 */
export function answerAsScim(app: App, ctx: ServerContext): void {
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
}

/** A problem as SCIM states it: a request the schema refuses is invalidValue, bad JSON invalidSyntax. */
function scimErrorOf(problem: Problem): { status: number; scimType?: string; detail: string } {
  const detail = problem.detail ?? problem.message
  if (problem.kind === 'request/malformed-json') return { status: 400, scimType: 'invalidSyntax', detail }
  if (problem.kind === 'request/invalid') return { status: 400, scimType: 'invalidValue', detail }
  return { status: problem.status, detail }
}

const ScimErrorSchema = Type.Object({
  schemas: Type.Array(Type.String()),
  status: Type.String(),
  scimType: Type.Optional(Type.String()),
  detail: Type.Optional(Type.String()),
})

/**
 * A SCIM route's options: the bank's identity provider (a bank backend holding staff:provision) or an admin may call
 * it; what it takes (`params`, `body`, `querystring`), what it answers, and the SCIM errors it answers itself beside
 * those any request may meet (too large, not JSON, rate-limited, busy).
 */
export function scimRoute<Takes extends object, Answers extends Record<number, TSchema>>(
  summary: string,
  takes: Takes,
  answers: Answers,
  errors: number[],
) {
  // Typed as the answers alone: the handler answers those, the SCIM error handler (`answerAsScim`) the errors.
  const response: Answers = {
    ...Object.fromEntries([...errors, 413, 415, 429, 503].map((s) => [s, ScimErrorSchema])),
    ...answers,
  }
  return { config: { access: allow.staff('staff:provision') }, schema: { summary, tags: ['scim'], ...takes, response } }
}

/** Who asks and where: the tenant, the actor the audit log names, and the base of the resources' locations. */
export function scimCaller(
  ctx: ServerContext,
  request: FastifyRequest,
): { tenantId: string; actor: Actor; base: string } {
  const principal = principalOf(request)
  return { tenantId: principal.tenantId, actor: actorOf(principal), base: issuerOf(ctx, request) }
}

/** A PATCH (RFC 7644 §3.5.2): the operations are checked by the resource's own patch function. */
export const ScimPatchBody = Type.Object({
  schemas: Type.Array(Type.Literal(SCIM_PATCH_SCHEMA), { minItems: 1, maxItems: 1 }),
  Operations: Type.Array(
    Type.Object({
      op: Type.String({ maxLength: 10 }),
      path: Type.Optional(Type.String({ maxLength: 200 })),
      value: Type.Optional(Type.Unknown()),
    }),
    { minItems: 1, maxItems: 50 },
  ),
})

/** Where a list starts and how long it is (RFC 7644 §3.4.2.4). */
export const ScimPage = {
  startIndex: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  count: Type.Optional(Type.Integer({ minimum: 0, maximum: 200 })),
}

/** A list of resources (RFC 7644 §3.4.2). */
export const scimListOf = (Resource: TSchema) =>
  Type.Object({
    schemas: Type.Array(Type.String()),
    totalResults: Type.Integer(),
    startIndex: Type.Integer(),
    itemsPerPage: Type.Integer(),
    Resources: Type.Array(Resource),
  })

/** A resource's `meta` (RFC 7643 §3.1). */
export const scimMetaOf = <Kind extends 'User' | 'Group'>(resourceType: Kind) =>
  Type.Object({
    resourceType: Type.Literal(resourceType),
    created: Type.String(),
    lastModified: Type.String(),
    location: Type.String(),
  })

/**
 * A reference to another resource (a user's group, a group's member). `$ref` (its URL) is let through unnamed: a
 * property of that name breaks the OpenAPI generator.
 */
export const scimReferenceTo = <Kind extends 'User' | 'direct'>(type: Kind, description: string) =>
  Type.Object(
    { value: Type.String(), display: Type.String(), type: Type.Literal(type) },
    { additionalProperties: true, description },
  )

/** A name or an id as the identity provider sends it. */
export const ScimText = Type.String({ minLength: 1, maxLength: 200 })

type ScimCaller = ReturnType<typeof scimCaller>

/**
 * How a SCIM resource type (users, groups) is written: its service functions, and how its routes describe it. What
 * they share (RFC 7644 §3.3 to §3.6) is `scimWriteRoutes`'s; what differs (a user's defaults, a group's members) is here.
 */
export interface ScimWrites<Input, Body extends TSchema> {
  /** Where the resources are, `/scim/v2/Users`, and the prefix of their ids. */
  path: string
  idPrefix: 'stf' | 'grp'
  /** What POST and PUT take, and what every write answers. */
  Body: Body
  Resource: TSchema
  summaries: { create: string; replace: string; patch: string; delete: string }
  /** What a POST or PUT body sets, given what the resource holds (none on a POST). */
  inputOf(body: Static<Body>, current?: Input): Input
  create(caller: ScimCaller, input: Input): Promise<{ meta: { location: string } }>
  change(caller: ScimCaller, id: string, next: (current: Input) => Input): Promise<unknown>
  patch(current: Input, operations: ScimPatchOperation[]): Input
  remove(caller: ScimCaller, id: string): Promise<void>
}

/**
 * POST (201, with the new resource's location), PUT, PATCH and DELETE (204) of a SCIM resource type, in a scope that
 * answers as SCIM does (`answerAsScim`).
 */
export async function scimWriteRoutes<Input, Body extends TSchema>(
  app: App,
  ctx: ServerContext,
  resource: ScimWrites<Input, Body>,
): Promise<void> {
  const Id = Type.Object({ id: idOf(resource.idPrefix) })
  // The body was checked against `resource.Body` before the handler runs; the type provider cannot follow a generic.
  const bodyOf = (request: FastifyRequest) => request.body as Static<Body>
  app.post(
    resource.path,
    scimRoute(resource.summaries.create, { body: resource.Body }, { 201: resource.Resource }, [400, 401, 403, 409]),
    async (request, reply) => {
      const created = await resource.create(scimCaller(ctx, request), resource.inputOf(bodyOf(request)))
      return reply.status(201).header('location', created.meta.location).send(created)
    },
  )
  app.put(
    `${resource.path}/:id`,
    scimRoute(
      resource.summaries.replace,
      { params: Id, body: resource.Body },
      { 200: resource.Resource },
      [400, 401, 403, 404, 409],
    ),
    async (request) => {
      const next = (current: Input) => resource.inputOf(bodyOf(request), current)
      return resource.change(scimCaller(ctx, request), request.params.id, next)
    },
  )
  app.patch(
    `${resource.path}/:id`,
    scimRoute(
      resource.summaries.patch,
      { params: Id, body: ScimPatchBody },
      { 200: resource.Resource },
      [400, 401, 403, 404, 409],
    ),
    async (request) => {
      const next = (current: Input) => resource.patch(current, request.body.Operations)
      return resource.change(scimCaller(ctx, request), request.params.id, next)
    },
  )
  app.delete(
    `${resource.path}/:id`,
    scimRoute(resource.summaries.delete, { params: Id }, { 204: Type.Null() }, [400, 401, 403, 404]),
    async (request, reply) => {
      await resource.remove(scimCaller(ctx, request), request.params.id)
      return reply.status(204).send(null)
    },
  )
}
