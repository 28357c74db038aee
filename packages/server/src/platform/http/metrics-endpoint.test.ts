import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createLogger } from '../logging.ts'
import { createMetrics } from '../metrics.ts'
import { createHttpServer } from './fastify.ts'
import { serveMetrics } from './metrics-endpoint.ts'

const TOKEN = 'm'.repeat(40)

async function app(config: { mode: 'dev' | 'production'; metricsPort?: number; metricsToken?: string }) {
  const metrics = createMetrics()
  const server = await createHttpServer({ logger: createLogger('silent'), metrics, bodyLimit: 1024, trustProxy: false })
  const endpoint = await serveMetrics(
    server,
    { metricsHost: '127.0.0.1', metricsPort: undefined, metricsToken: undefined, ...config },
    metrics,
  )
  server.addHook('onClose', () => endpoint.close())
  await server.ready()
  return { server, endpoint }
}

const scrape = async (server: Awaited<ReturnType<typeof app>>['server'], authorization?: string) =>
  server.inject({ url: '/metrics', headers: authorization ? { authorization } : {} })

describe('/metrics is kept from the public', () => {
  test('dev mode serves it on the main port, as Prometheus text', async () => {
    const { server } = await app({ mode: 'dev' })
    try {
      const response = await scrape(server)
      assert.equal(response.statusCode, 200)
      assert.match(response.body, /strongroom_http_requests_total/)
    } finally {
      await server.close()
    }
  })

  test('production without a token or a port of its own serves it nowhere', async () => {
    const { server } = await app({ mode: 'production' })
    try {
      const response = await scrape(server)
      assert.equal(response.statusCode, 404)
      assert.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8')
      assert.doesNotMatch(response.body, /strongroom_/)
    } finally {
      await server.close()
    }
  })

  test('with a token: refused without it or with another, served with it', async () => {
    const { server } = await app({ mode: 'production', metricsToken: TOKEN })
    try {
      const missing = await scrape(server)
      assert.equal(missing.statusCode, 401)
      assert.equal(missing.headers['www-authenticate'], 'Bearer')
      assert.equal(JSON.parse(missing.body).type, 'https://strongroom.dev/problems/auth/missing-credentials')
      for (const wrong of [
        `Bearer ${'n'.repeat(40)}`,
        `Bearer ${TOKEN.slice(1)}`,
        `Basic ${TOKEN}`,
        `Bearer ${TOKEN}x`,
      ]) {
        const refused = await scrape(server, wrong)
        assert.equal(refused.statusCode, 401, wrong)
        assert.doesNotMatch(refused.body, /strongroom_/)
      }
      const served = await scrape(server, `Bearer ${TOKEN}`)
      assert.equal(served.statusCode, 200)
      assert.match(served.body, /strongroom_http_requests_total/)
    } finally {
      await server.close()
    }
  })

  test('on a port of its own: served there, and the main port has none (a token does not bring it back)', async () => {
    const { server, endpoint } = await app({ mode: 'dev', metricsPort: 0, metricsToken: TOKEN })
    try {
      assert.equal((await scrape(server)).statusCode, 404)
      assert.equal((await scrape(server, `Bearer ${TOKEN}`)).statusCode, 404)
      assert.ok(endpoint.url)
      const response = await fetch(endpoint.url)
      assert.equal(response.status, 200)
      assert.match(await response.text(), /strongroom_http_requests_total/)
      const elsewhere = await fetch(endpoint.url.replace('/metrics', '/v1/me'))
      assert.equal(elsewhere.status, 404)
      await elsewhere.body?.cancel()
    } finally {
      await server.close()
    }
    assert.ok(endpoint.url)
    await assert.rejects(fetch(endpoint.url), 'the listener closes with the server')
  })
})
