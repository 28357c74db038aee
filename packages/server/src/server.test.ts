import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { installAccessControl } from './access.ts'
import { messageActions } from './conversations/message-actions.ts'
import { DeactivatedAppVersions } from './integrity/app-versions.ts'
import { IntegrityTokenChecker } from './integrity/tokens.ts'
import { allow } from './platform/http/access-rule.ts'
import { createHttpServer } from './platform/http/fastify.ts'
import { problemCatalogue } from './platform/http/problems.ts'
import { createLogger } from './platform/logging.ts'
import { createMetrics } from './platform/metrics.ts'
import { startTestServer, type TestServer } from './testing/harness.ts'

describe('the HTTP surface', () => {
  let server: TestServer

  before(async () => {
    server = await startTestServer()
  })
  after(() => server.stop())

  test('/healthz says the process is up; /readyz that the database is (and whether the bus is, without depending on it)', async () => {
    assert.deepEqual(await (await fetch(`${server.url}/healthz`)).json(), { status: 'ok' })
    const ready = await fetch(`${server.url}/readyz`)
    assert.equal(ready.status, 200)
    const body = await ready.json()
    assert.equal(body.status, 'ready')
    assert.equal(body.database, process.env.DATABASE_URL ? 'postgres' : 'pglite')
    assert.equal(body.bus, process.env.NATS_URL ? 'nats' : 'memory')
    assert.equal(body.busConnected, true)
  })

  test('/metrics is Prometheus text with request counters and latency histograms', async () => {
    await fetch(`${server.url}/healthz`)
    const response = await fetch(`${server.url}/metrics`)
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/)
    const text = await response.text()
    assert.match(text, /strongroom_http_requests_total\{method="GET",route="\/healthz",status="200"\} \d+/)
    assert.match(text, /strongroom_http_request_duration_seconds_bucket/)
    assert.match(text, /strongroom_stream_open_sockets 0/)
    assert.match(text, /strongroom_bus_connected 1/)
    for (const name of ['message_commit_failures', 'stream_catch_ups', 'drains', 'bus_reconnects', 'bus_disconnects']) {
      assert.match(text, new RegExp(`strongroom_${name}_total \\d+`))
    }
    assert.match(text, /process_cpu_seconds_total/)
  })

  test('/openapi.json is OpenAPI 3.1 with every API route and the problem catalogue', async () => {
    const document = await (await fetch(`${server.url}/openapi.json`)).json()
    assert.equal(document.openapi, '3.1.0')
    const documented = Object.entries(document.paths as Record<string, Record<string, unknown>>).flatMap(
      ([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
    )
    // The WebSocket route is described in prose: OpenAPI has no way to describe its frames.
    const apiRoutes = server.accessTable
      .map(({ method, url }) => `${method} ${url}`)
      .filter((route) => /^\w+ \/(v1|\.well-known|scim)\//.test(route) && route !== 'GET /v1/stream')
    assert.match(document.info.description, /WebSocket at \/v1\/stream/)
    assert.deepEqual(documented.sort(), apiRoutes.sort())
    assert.deepEqual(document['x-problem-types'], problemCatalogue)
    const send = document.paths['/v1/conversations/{conversationId}/messages'].post
    assert.equal(send.requestBody.content['application/json'].schema.additionalProperties, false)
  })

  test('an unknown path is a problem document, not an HTML page', async () => {
    const response = await fetch(`${server.url}/v1/nothing-here`)
    assert.equal(response.status, 404)
    assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/)
    assert.deepEqual(await response.json(), {
      type: 'https://strongroom.dev/problems/request/not-found',
      title: 'No such resource',
      status: 404,
      instance: '/v1/nothing-here',
    })
  })

  test('a route without an access rule stops the server from starting (deny by default)', async () => {
    const metrics = createMetrics()
    const app = await createHttpServer({ logger: createLogger('silent'), metrics, bodyLimit: 1024, trustProxy: false })
    const gate = {
      tokens: new IntegrityTokenChecker(server.ctx),
      deactivated: new DeactivatedAppVersions(server.ctx),
      requestAssertion: async () => {},
      policyOf: async () => undefined,
    }
    const checks = { gate, integrityRequired: async () => false, requireMember: async () => {} }
    const table = installAccessControl(app, server.ctx, checks)
    app.get('/v1/declared', { config: { access: allow.staff('audit:read') } }, async () => 'guarded')
    assert.throws(() => app.get('/v1/forgotten', async () => 'open'), /route GET \/v1\/forgotten has no access rule/)
    // A module registers its routes inside a plugin: there the missing rule makes start-up itself fail.
    app.register(async (scope) => {
      scope.post('/v1/forgotten-in-a-module', async () => 'open')
    })
    await assert.rejects(async () => app.ready(), /route POST \/v1\/forgotten-in-a-module has no access rule/)
    assert.deepEqual(table, [{ method: 'GET', url: '/v1/declared', access: { who: 'staff', scope: 'audit:read' } }])
    gate.deactivated.close()
    await app.close()
  })

  test('the access table lists the routes the server answers, each with the rule declared next to its handler', () => {
    const rows = server.accessTable
    assert.equal(new Set(rows.map(({ method, url }) => `${method} ${url}`)).size, rows.length, 'each route once')
    for (const { method, url } of rows) assert.ok(server.app.hasRoute({ method, url }), `${method} ${url} is served`)
    const ruleOf = (method: string, url: string) => rows.find((row) => row.method === method && row.url === url)?.access
    assert.deepEqual(ruleOf('POST', '/v1/conversations/:conversationId/messages'), {
      who: 'member',
      staffScope: 'conversations:write',
      membership: 'conversationId',
      browser: 'chat',
    })
    assert.deepEqual(ruleOf('POST', '/v1/integrity/attest'), { who: 'device', integrity: 'exempt' })
    assert.deepEqual(ruleOf('GET', '/v1/stream'), { who: 'stream', browser: 'chat' })
    assert.deepEqual(ruleOf('GET', '/healthz'), { who: 'anyone' })
    // The stream's frames are held to these routes' rules: each names a route that has that very rule.
    for (const action of Object.values(messageActions)) {
      const [method = '', url = ''] = action.route.split(' ')
      assert.equal(ruleOf(method, url), action.access, action.route)
    }
  })
})
