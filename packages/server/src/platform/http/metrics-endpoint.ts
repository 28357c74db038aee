import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { Config } from '../config.ts'
import type { Metrics } from '../metrics.ts'
import { allow } from './access-rule.ts'
import type { App } from './fastify.ts'
import { Problem } from './problems.ts'

/** Whether the main port answers `/metrics`, and to whom. */
export type MetricsExposure =
  | { kind: 'open' } // dev mode without a token or a port of its own
  | { kind: 'token'; tokenHash: Buffer }
  | { kind: 'elsewhere' } // its own listener, or (production) nowhere on the main port

export function metricsExposure(config: Pick<Config, 'mode' | 'metricsPort' | 'metricsToken'>): MetricsExposure {
  if (config.metricsPort !== undefined) return { kind: 'elsewhere' }
  if (config.metricsToken) return { kind: 'token', tokenHash: sha256(config.metricsToken) }
  return config.mode === 'dev' ? { kind: 'open' } : { kind: 'elsewhere' }
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/** Compares hashes, so that the comparison takes the same time whatever the length of what was sent. */
function bearerMatches(authorization: string | undefined, tokenHash: Buffer): boolean {
  const match = /^Bearer ([^\s]+)$/i.exec(authorization ?? '')
  return match !== null && timingSafeEqual(sha256(match[1] as string), tokenHash)
}

/**
 * `/metrics` for Prometheus. Operators keep it from the public: on a port of its own (STRONGROOM_METRICS_PORT, bound
 * to STRONGROOM_METRICS_HOST; the main port then answers 404), or on the main port behind a bearer token
 * (STRONGROOM_METRICS_TOKEN). In production without either, no port serves it. Returns the separate listener, if any,
 * for the caller to close.
 */
export async function serveMetrics(
  app: App,
  config: Pick<Config, 'mode' | 'metricsPort' | 'metricsHost' | 'metricsToken'>,
  metrics: Metrics,
): Promise<{ url: string | undefined; close(): Promise<void> }> {
  const exposure = metricsExposure(config)
  app.get('/metrics', { config: { access: allow.anyone }, schema: { hide: true } }, async (request, reply) => {
    if (exposure.kind === 'elsewhere') throw new Problem('request/not-found')
    if (exposure.kind === 'token' && !bearerMatches(request.headers.authorization, exposure.tokenHash)) {
      reply.header('www-authenticate', 'Bearer')
      throw new Problem(request.headers.authorization ? 'auth/invalid-token' : 'auth/missing-credentials')
    }
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })
  if (config.metricsPort === undefined) return { url: undefined, close: async () => {} }
  const listener = createServer((request, response) => {
    if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
      return
    }
    metrics.registry.metrics().then(
      (body) => response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body),
      () => response.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
    )
  })
  const address = await listen(listener, config.metricsPort, config.metricsHost)
  return {
    url: `http://${address}/metrics`,
    // A scrape under way at shutdown is cut rather than waited for: its kept-alive connection would hold the close.
    close: () =>
      new Promise((resolve) => {
        listener.close(() => resolve())
        listener.closeAllConnections()
      }),
  }
}

function listen(server: Server, port: number, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      const address = server.address()
      if (address === null || typeof address === 'string') return reject(new Error('metrics listener has no port'))
      resolve(`${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`)
    })
  })
}
