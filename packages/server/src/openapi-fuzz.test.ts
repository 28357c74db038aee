import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createDpopProof, generateDeviceKeys } from '@strongroom/sdk'
import fc from 'fast-check'
import { createTestBank, startTestServer, type TestBank, type TestServer } from './testing/harness.ts'
import { hostileStrings, spoiled } from './testing/hostile-values.ts'

/**
 * Property-based fuzzing of every route the OpenAPI document lists (issue 21, scope 4): bodies, query strings and path
 * parameters generated from each route's own schemas, then spoiled (NUL characters, unpaired surrogates, numbers far
 * beyond any column, wrong types, garbage JSON, wrong content types), sent with credentials of the kind the route
 * accepts so that the input reaches the handler. Whatever comes in, no answer is a 5xx, and every error is a problem
 * document (or the error format the route itself declares, as the OAuth token endpoint does).
 */

type Schema = Record<string, unknown>
interface Operation {
  method: string
  path: string
  parameters: { name: string; in: string; schema?: Schema; required?: boolean }[]
  body: Schema | undefined
  bodyTypes: string[]
  /** Statuses whose declared body is the route's own, not a problem document. */
  ownErrorStatuses: Set<number>
}
interface FuzzRequest {
  credential: Credential
  path: string
  query: string
  contentType: string | undefined
  payload: string | undefined
}
type Credential = 'none' | 'staff' | 'device'

/** Runs per route: enough to reach each route's handler with many shapes, few enough to stay within half a minute. */
const RUNS_PER_ROUTE = Number(process.env.FUZZ_RUNS_PER_ROUTE ?? 24)
const SEED = Number(process.env.FUZZ_SEED ?? 21)

function resolve(schema: Schema | undefined, doc: Schema): Schema {
  if (!schema) return {}
  const ref = schema.$ref
  if (typeof ref === 'string' && ref.startsWith('#/')) {
    let target: unknown = doc
    for (const part of ref.slice(2).split('/')) target = (target as Record<string, unknown>)[part]
    return resolve(target as Schema, doc)
  }
  return schema
}

/** Values the schema allows (a pattern or a format is sometimes missed, which is as good a test). */
function allowedValue(raw: Schema | undefined, doc: Schema, depth = 0): fc.Arbitrary<unknown> {
  return validValue(resolve(raw, doc), doc, depth)
}

function validValue(schema: Schema, doc: Schema, depth: number): fc.Arbitrary<unknown> {
  if ('const' in schema) return fc.constant(schema.const)
  if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as unknown[]))
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const options = schema[key]
    if (Array.isArray(options) && options.length > 0) {
      return fc.oneof(...(options as Schema[]).map((option) => allowedValue(option, doc, depth + 1)))
    }
  }
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type
  switch (type) {
    case 'string': {
      if (typeof schema.pattern === 'string') {
        return fc.stringMatching(new RegExp(schema.pattern))
      }
      if (schema.format === 'uri') return fc.webUrl()
      if (schema.format === 'date-time') return fc.date({ noInvalidDate: true }).map((d) => d.toISOString())
      return fc.string({
        unit: 'grapheme',
        minLength: Number(schema.minLength ?? 0),
        maxLength: Math.min(Number(schema.maxLength ?? 60), 200),
      })
    }
    case 'integer':
      return fc.integer({
        min: Math.max(Number(schema.minimum ?? -1000), Number.MIN_SAFE_INTEGER),
        max: Math.min(Number(schema.maximum ?? 1_000_000), Number.MAX_SAFE_INTEGER),
      })
    case 'number':
      return fc.double({ noNaN: true, noDefaultInfinity: true })
    case 'boolean':
      return fc.boolean()
    case 'null':
      return fc.constant(null)
    case 'array':
      if (depth > 4) return fc.constant([])
      return fc.array(allowedValue(schema.items as Schema, doc, depth + 1), { maxLength: 4 })
    case 'object': {
      if (depth > 4) return fc.constant({})
      const properties = (schema.properties ?? {}) as Record<string, Schema>
      const required = new Set((schema.required ?? []) as string[])
      const known = fc.record(
        Object.fromEntries(Object.entries(properties).map(([name, p]) => [name, allowedValue(p, doc, depth + 1)])),
        { requiredKeys: Object.keys(properties).filter((name) => required.has(name)) },
      )
      // Mostly every field, so that each can be the one spoiled; sometimes only the required ones.
      const every = fc.record(
        Object.fromEntries(Object.entries(properties).map(([name, p]) => [name, allowedValue(p, doc, depth + 1)])),
      )
      return fc.oneof({ arbitrary: every, weight: 3 }, { arbitrary: known, weight: 1 })
    }
    default:
      return fc.jsonValue({ maxDepth: 2 })
  }
}

/** A path segment as a client would send it; an unpaired surrogate as the bytes WTF-8 gives it (not UTF-8). */
function segment(value: string): string {
  try {
    return encodeURIComponent(value)
  } catch {
    return `%ED%A0%80${encodeURIComponent(value.replace(/[\uD800-\uDFFF]/g, ''))}`
  }
}

function operationsOf(doc: Schema): Operation[] {
  const operations: Operation[] = []
  for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, Schema>>)) {
    for (const [method, op] of Object.entries(methods)) {
      const content = ((op.requestBody as Schema | undefined)?.content ?? {}) as Record<string, { schema: Schema }>
      const responses = (op.responses ?? {}) as Record<string, { description?: string }>
      operations.push({
        method: method.toUpperCase(),
        path,
        parameters: (op.parameters ?? []) as Operation['parameters'],
        body: Object.values(content)[0]?.schema,
        bodyTypes: Object.keys(content),
        ownErrorStatuses: new Set(
          Object.entries(responses)
            .filter(([status, r]) => Number(status) >= 400 && r.description !== 'application/problem+json')
            .map(([status]) => Number(status)),
        ),
      })
    }
  }
  return operations
}

/** Destructive routes last, so that revoking (or deactivating) the fuzzer's own device or staff leaves the others covered. */
const destructive = /revoke|wipe|suspend|deactivate|erase|erasure|delete|release|reset/
const byDestructiveLast = (a: Operation, b: Operation) =>
  Number(destructive.test(a.path)) - Number(destructive.test(b.path)) || a.path.localeCompare(b.path)

describe('OpenAPI fuzzing: no input makes a 5xx, every error is a problem document', () => {
  let server: TestServer
  let bank: TestBank
  let doc: Schema
  let device: { keys: Awaited<ReturnType<typeof generateDeviceKeys>>; token: string; id: string }
  const known: Record<string, string> = {}
  const host = () => new URL(server.url).host

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    doc = (await server.app.inject({ url: '/openapi.json' })).json()
    const keys = await generateDeviceKeys()
    const enrolled = await server.app.inject({
      method: 'POST',
      url: '/v1/devices',
      headers: {
        host: host(),
        dpop: await createDpopProof(keys, { htm: 'POST', htu: `${server.url}/v1/devices` }),
      },
      payload: { enrolmentCode: await bank.enrolmentCode(), label: 'fuzzer' },
    })
    assert.equal(enrolled.statusCode, 201, enrolled.body)
    device = { keys, token: enrolled.json().token.accessToken, id: enrolled.json().device.id }
    const conversation = await server.app.inject({
      method: 'POST',
      url: '/v1/conversations',
      headers: { authorization: `Bearer ${bank.adminToken}` },
      payload: { customerId: bank.customerId },
    })
    assert.equal(conversation.statusCode, 201, conversation.body)
    Object.assign(known, {
      tenantId: bank.tenantId,
      customerId: bank.customerId,
      staffId: bank.agentId,
      deviceId: device.id,
      conversationId: conversation.json().id,
    })
  })
  after(() => server.stop())

  async function send(op: Operation, request: FuzzRequest) {
    const url = request.path + request.query
    const headers: Record<string, string> = { host: host() }
    if (request.contentType) headers['content-type'] = request.contentType
    if (request.credential === 'staff') headers.authorization = `Bearer ${bank.adminToken}`
    if (request.credential === 'device') {
      headers.authorization = `DPoP ${device.token}`
      headers.dpop = await createDpopProof(device.keys, {
        htm: op.method,
        htu: `${server.url}${request.path}`,
        accessToken: device.token,
      })
    }
    return server.app.inject({ method: op.method as 'GET', url, headers, payload: request.payload })
  }

  /** The credential that gets this route past authentication, found by asking with each. */
  async function credentialFor(op: Operation, path: string): Promise<Credential> {
    for (const credential of ['staff', 'device', 'none'] as const) {
      const response = await send(op, {
        credential,
        path,
        query: '',
        contentType: op.bodyTypes[0],
        payload: op.bodyTypes.length > 0 ? '{}' : undefined,
      })
      const type = String(response.json<{ type?: string }>()?.type ?? '')
      if (response.statusCode !== 401 && !type.endsWith('auth/forbidden')) return credential
    }
    return 'none'
  }

  /**
   * A request that is valid but for one spoiled part: a body field, a query parameter, a path parameter, the body as
   * a whole (garbage, or the wrong content type), or, now and then, the credentials.
   */
  function requestOf(op: Operation, credential: Credential): fc.Arbitrary<FuzzRequest> {
    const pathParams = op.parameters.filter((p) => p.in === 'path')
    const queryParams = op.parameters.filter((p) => p.in === 'query')
    const pathOf = (values: Record<string, string>) =>
      op.path.replace(/\{(\w+)\}/g, (_, name: string) => {
        const value = values[name] ?? known[name] ?? 'x'
        return /^%[0-9A-Za-z]{2}/.test(value) ? value : segment(value)
      })
    const badPathValue = fc.oneof(
      fc.constantFrom(...hostileStrings, '1e20', '-1', '%00', '%ZZ', '%ED%A0%80', '..'),
      ...pathParams.map((p) => validValue(resolve(p.schema, doc), doc, 0).map(String)),
    )
    const queryText = (values: Record<string, unknown>) => {
      const search = new URLSearchParams()
      for (const [name, value] of Object.entries(values)) {
        search.set(name, typeof value === 'string' ? value : JSON.stringify(value))
      }
      const text = search.toString()
      return text ? `?${text}` : ''
    }
    const validQuery = fc.record(Object.fromEntries(queryParams.map((p) => [p.name, allowedValue(p.schema, doc)])), {
      requiredKeys: queryParams.filter((p) => p.required).map((p) => p.name),
    })
    const contentType = op.bodyTypes[0] ?? 'application/json'
    const encode = (value: unknown) =>
      contentType === 'application/x-www-form-urlencoded' && value && typeof value === 'object'
        ? new URLSearchParams(
            Object.entries(value).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
          ).toString()
        : JSON.stringify(value)
    const validBody = op.body ? allowedValue(op.body, doc) : fc.constant(undefined)
    const base = fc.record({
      credential: fc.constant(credential),
      path: fc.constant(pathOf({})),
      query: validQuery.map(queryText),
      contentType: fc.constant(op.body ? contentType : undefined),
      payload: validBody.map((value) => (value === undefined ? undefined : encode(value))),
    })
    const faults: fc.WeightedArbitrary<FuzzRequest>[] = [
      { weight: 1, arbitrary: base },
      {
        weight: 1,
        arbitrary: fc
          .tuple(base, fc.constantFrom<Credential>('none', 'staff', 'device'))
          .map(([request, other]) => ({ ...request, credential: other })),
      },
      {
        weight: 1,
        arbitrary: fc
          .tuple(
            base,
            fc.constantFrom(
              'text/plain',
              'application/xml',
              'multipart/form-data; boundary=x',
              'application/x-www-form-urlencoded',
              'application/json; charset=utf-16',
              'application/octet-stream',
              'application/json',
              '*/*',
            ),
            fc.oneof(
              fc.string({ unit: 'binary', maxLength: 200 }),
              fc.constantFrom('', '{', 'null', '[]', '"\\u0000"', '{"a":"\\ud800"}', '1e400', '{"__proto__":{}}'),
            ),
          )
          .map(([request, type, payload]) => ({ ...request, contentType: type, payload })),
      },
    ]
    if (op.body) {
      faults.push({
        weight: 6,
        arbitrary: fc.tuple(base, spoiled(validBody)).map(([request, body]) => ({ ...request, payload: encode(body) })),
      })
    }
    if (queryParams.length > 0) {
      faults.push({
        weight: 3,
        arbitrary: fc
          .tuple(base, spoiled(validQuery))
          .map(([request, values]) => ({ ...request, query: queryText(values as Record<string, unknown>) })),
      })
    }
    if (pathParams.length > 0) {
      faults.push({
        weight: 2,
        arbitrary: fc
          .tuple(base, fc.constantFrom(...pathParams.map((p) => p.name)), badPathValue)
          .map(([request, name, value]) => ({ ...request, path: pathOf({ [name]: value }) })),
      })
    }
    return fc.oneof(...faults)
  }

  test('every route, garbage in: zero 5xx, every error a problem document', async (t) => {
    const operations = operationsOf(doc).sort(byDestructiveLast)
    assert.ok(operations.length > 100, `the OpenAPI document lists ${operations.length} operations`)
    let requests = 0
    const serverErrors: string[] = []
    const notProblems: string[] = []
    const reachedHandler = new Set<string>()
    for (const op of operations) {
      const route = `${op.method} ${op.path}`
      const basePath = op.path.replace(/\{(\w+)\}/g, (_, name: string) => known[name] ?? 'x')
      const credential = await credentialFor(op, basePath)
      await fc.assert(
        fc.asyncProperty(requestOf(op, credential), async (request) => {
          requests++
          const response = await send(op, request)
          if (response.statusCode >= 500) {
            serverErrors.push(`${route} → ${response.statusCode} ${response.body.slice(0, 200)}`)
          }
          if (response.statusCode !== 401 && response.statusCode !== 403) reachedHandler.add(route)
          if (response.statusCode >= 400 && !op.ownErrorStatuses.has(response.statusCode)) {
            if (!String(response.headers['content-type']).startsWith('application/problem+json')) {
              notProblems.push(`${route} → ${response.statusCode} ${response.headers['content-type']}`)
            }
          }
        }),
        { numRuns: RUNS_PER_ROUTE, seed: SEED },
      )
    }
    t.diagnostic(
      `routes: ${operations.length}, past authentication: ${reachedHandler.size}, requests: ${requests}, ` +
        `5xx: ${serverErrors.length}, errors not problem+json: ${notProblems.length}`,
    )
    assert.deepEqual(serverErrors, [])
    assert.deepEqual(notProblems, [])
  })
})
