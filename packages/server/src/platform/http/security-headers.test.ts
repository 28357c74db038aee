import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createLogger } from '../logging.ts'
import { createMetrics } from '../metrics.ts'
import { createHttpServer } from './fastify.ts'
import { Problem } from './problems.ts'

async function app() {
  const server = await createHttpServer({
    logger: createLogger('silent'),
    metrics: createMetrics(),
    bodyLimit: 1024,
    trustProxy: true,
  })
  server.get('/answer', async () => ({ ok: true }))
  server.get('/refused', async () => {
    throw new Problem('auth/forbidden')
  })
  server.get('/page', async (_request, reply) =>
    reply.header('content-security-policy', "default-src 'self'").type('text/html').send('<p>page</p>'),
  )
  await server.ready()
  return server
}

describe('security headers on every response', () => {
  test('API answers, errors and not-found carry nosniff, no-referrer and frame protection', async () => {
    const server = await app()
    try {
      for (const url of ['/answer', '/refused', '/nowhere']) {
        const response = await server.inject({ url })
        assert.equal(response.headers['x-content-type-options'], 'nosniff', url)
        assert.equal(response.headers['referrer-policy'], 'no-referrer', url)
        assert.equal(response.headers['x-frame-options'], 'DENY', url)
        assert.equal(response.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'", url)
      }
      // A page keeps its own policy.
      const page = await server.inject({ url: '/page' })
      assert.equal(page.headers['content-security-policy'], "default-src 'self'")
      assert.equal(page.headers['x-frame-options'], 'DENY')
    } finally {
      await server.close()
    }
  })

  test('HSTS only on answers to requests that came over TLS (here: through the trusted proxy)', async () => {
    const server = await app()
    try {
      const plain = await server.inject({ url: '/answer' })
      assert.equal(plain.headers['strict-transport-security'], undefined)
      const tls = await server.inject({ url: '/answer', headers: { 'x-forwarded-proto': 'https' } })
      assert.equal(tls.headers['strict-transport-security'], 'max-age=63072000')
      const refused = await server.inject({ url: '/refused', headers: { 'x-forwarded-proto': 'https' } })
      assert.equal(refused.statusCode, 403)
      assert.equal(refused.headers['strict-transport-security'], 'max-age=63072000')
    } finally {
      await server.close()
    }
  })

  test('a client cannot claim TLS to a server that does not trust a proxy', async () => {
    const server = await createHttpServer({
      logger: createLogger('silent'),
      metrics: createMetrics(),
      bodyLimit: 1024,
      trustProxy: false,
    })
    server.get('/answer', async () => ({ ok: true }))
    try {
      const response = await server.inject({ url: '/answer', headers: { 'x-forwarded-proto': 'https' } })
      assert.equal(response.headers['strict-transport-security'], undefined)
    } finally {
      await server.close()
    }
  })
})
