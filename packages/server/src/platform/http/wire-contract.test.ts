/**
 * One wire schema (issue 19): the SDK's protocol module declares what each route it types takes and answers
 * (`wireContract`), and the server declares those routes' bodies, query strings and responses with the same schemas.
 * This compares every entry with the route as the running server documents it, so that a route whose body, query or
 * answer changes without the SDK's type (or the reverse) fails here instead of in a bank's app.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { KindGuard, type TObject, type TSchema, Type } from '@sinclair/typebox'
import { type WireEntry, wireContract } from '@strongroom/sdk/protocol'
import { startTestServer, type TestServer } from '../../testing/harness.ts'

interface OpenApiDocument {
  paths: Record<
    string,
    Record<
      string,
      {
        requestBody?: { content?: Record<string, { schema: unknown }> }
        parameters?: DocumentedParameter[]
        responses: Record<string, { content?: Record<string, { schema: unknown }> }>
      }
    >
  >
}

interface DocumentedParameter {
  in: string
  name: string
  required?: boolean
  description?: string
  schema: unknown
}

function documentedOperation(document: OpenApiDocument, route: string) {
  const [method, path] = route.split(' ') as [string, string]
  return document.paths[path.replace(/:(\w+)/g, '{$1}')]?.[method.toLowerCase()]
}

/** What the OpenAPI document says a route takes: its body's schema (JSON, or a form: OAuth's), `no body`, or why none. */
function documentedBody(document: OpenApiDocument, route: string): unknown {
  const operation = documentedOperation(document, route)
  if (!operation) return `no route ${route}`
  const content = operation.requestBody?.content
  return (content?.['application/json'] ?? content?.['application/x-www-form-urlencoded'])?.schema ?? 'no body'
}

/** What the OpenAPI document says a route reads from its query string: its parameters by name, `no query`, or why none. */
function documentedQuery(document: OpenApiDocument, route: string): unknown {
  const operation = documentedOperation(document, route)
  if (!operation) return `no route ${route}`
  const parameters = (operation.parameters ?? []).filter((parameter) => parameter.in === 'query')
  if (parameters.length === 0) return 'no query'
  return parameters
    .map(({ in: _, ...parameter }) => ({ ...parameter, required: parameter.required ?? false }))
    .sort((a, b) => a.name.localeCompare(b.name))
}

/** What the OpenAPI document says a route answers with this status: its body's JSON Schema, `no body`, or why none. */
function documentedAnswer(document: OpenApiDocument, route: string, status: string): unknown {
  const operation = documentedOperation(document, route)
  if (!operation) return `no route ${route}`
  const response = operation.responses[status]
  if (!response) return `${route} documents no ${status} answer`
  return response.content?.['application/json']?.schema ?? 'no body'
}

/**
 * A schema as @fastify/swagger writes it into the document: OpenAPI 3.0 has no `patternProperties`, so a record's
 * value schema becomes `additionalProperties`, and no `const`, so a literal becomes an `enum` of one; a schema with
 * an `$id` (RateLimitPolicy) is written in place, without it.
 */
function documentedForm(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(documentedForm)
  if (schema === null || typeof schema !== 'object') return schema
  const entries = Object.entries(schema).flatMap(([key, value]) => {
    if (key === '$id') return []
    if (key === 'patternProperties')
      return [['additionalProperties', documentedForm(Object.values(value as object)[0])]]
    if (key === 'const') return [['enum', [value]]]
    return [[key, documentedForm(value)]]
  })
  return Object.fromEntries(entries)
}

/** A contract schema as the document would show it (`no body` for none). */
function typedForm(schema: TSchema | undefined): unknown {
  return schema === undefined || KindGuard.IsVoid(schema)
    ? 'no body'
    : documentedForm(JSON.parse(JSON.stringify(schema)))
}

/**
 * A contract's query schema as the document would show it: a parameter per property, by name, whether it is required,
 * and its schema with its description lifted onto the parameter (`no query` for none).
 */
function typedQuery(schema: TObject | undefined): unknown {
  if (schema === undefined) return 'no query'
  const required = new Set(schema.required ?? [])
  return Object.entries(schema.properties)
    .map(([name, property]) => {
      const { description, ...form } = documentedForm(JSON.parse(JSON.stringify(property))) as { description?: string }
      return {
        schema: form,
        name,
        required: required.has(name),
        ...(description === undefined ? {} : { description }),
      }
    })
    .sort((a, b) => a.name.localeCompare(b.name))
}

/**
 * The bodies, queries and answers whose schema differs from the server's: each with what the server says and what
 * the SDK says (`status` is `body` for the request's body, `query` for its query string). A route that takes a body
 * or reads a query the contract does not type differs too.
 */
function divergences(document: OpenApiDocument, contract: Record<string, WireEntry>) {
  return Object.entries(contract).flatMap(([route, { body, query, ...answers }]) =>
    [
      { status: 'body', served: documentedBody(document, route), typed: typedForm(body) },
      { status: 'query', served: documentedQuery(document, route), typed: typedQuery(query) },
      ...Object.entries(answers).map(([status, schema]) => ({
        status,
        served: documentedAnswer(document, route, status),
        typed: typedForm(schema),
      })),
    ].flatMap(({ status, served, typed }) => {
      try {
        assert.deepEqual(served, typed)
        return []
      } catch {
        return [{ route, status, served, typed }]
      }
    }),
  )
}

describe('the SDK types what the server takes and answers', () => {
  let server: TestServer
  let document: OpenApiDocument

  before(async () => {
    server = await startTestServer()
    document = (await server.app.inject({ url: '/openapi.json' })).json()
  })
  after(() => server.close())

  test("every route of the SDK's wire contract takes and answers with the contract's schemas", () => {
    assert.ok(Object.keys(wireContract).length >= 150)
    assert.deepEqual(divergences(document, wireContract), [])
  })

  test('an answer that drifted from the SDK type is named, as are a route the server does not have and a wrong status', () => {
    const customer = 'GET /v1/customers/:customerId'
    const drifted: TObject = structuredClone(wireContract[customer][200])
    drifted.properties = { ...drifted.properties, nickname: Type.String() }
    const planted: Record<string, WireEntry> = {
      [customer]: { 200: drifted },
      'GET /v1/customers/:customerId/nicknames': wireContract[customer],
      'GET /v1/me': { 204: Type.Void() },
      'POST /v1/conversations/:conversationId/markers': {
        200: wireContract[customer][200],
        body: wireContract['POST /v1/conversations/:conversationId/markers'].body,
      },
    }
    assert.deepEqual(
      divergences(document, planted).map((d) => [d.route, d.status, typeof d.served]),
      [
        [customer, '200', 'object'],
        ['GET /v1/customers/:customerId/nicknames', 'body', 'string'],
        ['GET /v1/customers/:customerId/nicknames', 'query', 'string'],
        ['GET /v1/customers/:customerId/nicknames', '200', 'string'],
        ['GET /v1/me', '204', 'string'],
        ['POST /v1/conversations/:conversationId/markers', '200', 'string'],
      ],
    )
  })

  test('a body that drifted from the SDK type is named, as are a body the contract leaves out and one the route does not take', () => {
    const create = 'POST /v1/customers'
    const drifted: TObject = structuredClone(wireContract[create].body)
    drifted.properties = { ...drifted.properties, nickname: Type.String() }
    const planted: Record<string, WireEntry> = {
      [create]: { 201: wireContract[create][201], body: drifted },
      'POST /v1/conversations': { 201: wireContract['POST /v1/conversations'][201] },
      'GET /v1/me': { 200: wireContract['GET /v1/me'][200], body: wireContract[create].body },
    }
    assert.deepEqual(
      divergences(document, planted).map((d) => [d.route, d.status, typeof d.served, typeof d.typed]),
      [
        [create, 'body', 'object', 'object'],
        ['POST /v1/conversations', 'body', 'object', 'string'],
        ['GET /v1/me', 'body', 'string', 'object'],
      ],
    )
  })

  test('every route the server documents is in the contract, but for those whose wire is not ours', () => {
    const contract = wireContract as Record<string, WireEntry>
    assert.deepEqual(
      documentedRoutes(document).filter((route) => !contract[route]),
      Object.values(UNTYPED_ROUTES).flat().sort(),
    )
  })

  test('every route the server documents a query string for is in the contract with its query', () => {
    assert.deepEqual(
      queriedRoutes(document).filter((route) => !(wireContract as Record<string, WireEntry>)[route]?.query),
      UNTYPED_QUERIES,
    )
  })

  test('a query that drifted from the SDK type is named, as are a query the contract leaves out and one the route does not read', () => {
    const list = 'GET /v1/conversations'
    const longer: TObject = structuredClone(wireContract[list].query)
    longer.properties = { ...longer.properties, limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000 })) }
    const search = 'GET /v1/search/conversations'
    const optionalWords: TObject = structuredClone(wireContract[search].query)
    optionalWords.required = []
    const messages = 'GET /v1/conversations/:conversationId/messages'
    const renamed: TObject = structuredClone(wireContract[messages].query)
    renamed.properties = { since: renamed.properties.after as TSchema, limit: renamed.properties.limit as TSchema }
    const planted: Record<string, WireEntry> = {
      [list]: { ...wireContract[list], query: longer },
      [search]: { ...wireContract[search], query: optionalWords },
      [messages]: { ...wireContract[messages], query: renamed },
      'GET /v1/e2e/welcomes': { 200: wireContract['GET /v1/e2e/welcomes'][200] },
      'GET /v1/me': { 200: wireContract['GET /v1/me'][200], query: wireContract[list].query },
    }
    assert.deepEqual(
      divergences(document, planted).map((d) => [d.route, d.status, typeof d.served, typeof d.typed]),
      [
        [list, 'query', 'object', 'object'],
        [search, 'query', 'object', 'object'],
        [messages, 'query', 'object', 'object'],
        ['GET /v1/e2e/welcomes', 'query', 'object', 'string'],
        ['GET /v1/me', 'query', 'string', 'object'],
      ],
    )
  })
})

/**
 * The routes the document gives a query string to that the contract does not type, and why: SCIM's (RFC 7644's
 * filter, paging and attribute selection, not Strongroom's wire) and the OIDC back-channel logout's `tenant` (the
 * provider calls it).
 */
const UNTYPED_QUERIES = [
  'GET /scim/v2/Users',
  'GET /scim/v2/Groups',
  'GET /scim/v2/Groups/:id',
  'POST /v1/staff-sign-in/oidc/back-channel-logout',
].sort()

/**
 * The routes the document has that the contract leaves to the server, by why: their bodies are another
 * specification's, not Strongroom's wire, or (staff OIDC sign-in's configuration) kept with the provider-facing code.
 */
const UNTYPED_ROUTES = {
  /** SCIM 2.0 (RFC 7643/7644): the bank's identity provider provisions staff in SCIM's own schemas. */
  scim: [
    'GET /scim/v2/Users',
    'POST /scim/v2/Users',
    'GET /scim/v2/Users/:id',
    'PUT /scim/v2/Users/:id',
    'PATCH /scim/v2/Users/:id',
    'DELETE /scim/v2/Users/:id',
    'GET /scim/v2/Groups',
    'POST /scim/v2/Groups',
    'GET /scim/v2/Groups/:id',
    'PUT /scim/v2/Groups/:id',
    'PATCH /scim/v2/Groups/:id',
    'DELETE /scim/v2/Groups/:id',
    'GET /v1/policies/scim-roles',
    'PUT /v1/policies/scim-roles',
  ],
  /**
   * Staff sign-in through the bank's OpenID provider: its configuration, kept beside the OIDC flow
   * (tenancy/oidc-routes.ts), and the provider's back-channel logout (OpenID Connect Back-Channel Logout 1.0).
   */
  oidc: [
    'GET /v1/staff-sign-in/oidc',
    'PUT /v1/staff-sign-in/oidc',
    'DELETE /v1/staff-sign-in/oidc',
    'POST /v1/staff-sign-in/oidc/back-channel-logout',
  ],
  /** The channel providers' webhooks: Twilio's, Meta's and Google's formats, verified by their signatures. */
  providerWebhooks: [
    'POST /v1/channels/twilio/webhook',
    'GET /v1/channels/whatsapp/webhook',
    'POST /v1/channels/whatsapp/webhook',
    'GET /v1/channels/messenger/webhook',
    'POST /v1/channels/messenger/webhook',
    'POST /v1/channels/rbm/webhook',
  ],
  /** A JSON Web Key Set (RFC 7517) that reads no query, whose route declares no answer schema. */
  keySets: ['GET /.well-known/strongroom-wipe-keys'],
}

/** Every route of the document, as `METHOD /path`. */
function documentedRoutes(document: OpenApiDocument): string[] {
  return Object.entries(document.paths)
    .flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
    )
    .sort()
}

/** The routes whose operation in the document reads a query parameter, as `METHOD /path`. */
function queriedRoutes(document: OpenApiDocument): string[] {
  return Object.entries(document.paths)
    .flatMap(([path, operations]) =>
      Object.entries(operations)
        .filter(([, operation]) => (operation.parameters ?? []).some((parameter) => parameter.in === 'query'))
        .map(([method]) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
    )
    .sort()
}
