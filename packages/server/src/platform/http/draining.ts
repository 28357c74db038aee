import type { IncomingMessage } from 'node:http'
import type { App } from './fastify.ts'
import { Problem } from './problems.ts'

/**
 * How long requests under way at shutdown may take before their connections are cut, so that what closing commits
 * and flushes still runs before the process is stopped for good (25 s after SIGTERM).
 */
export const DRAIN_GRACE_MS = 10_000
/** When the requests still running during a drain are logged (a drain of an idle node takes about a second). */
const DRAIN_REPORT_MS = 2000

/**
 * Shutdown for HTTP (issue 21): once `close()` has begun, a new request is refused with 503 `server/unavailable`
 * (Retry-After, problem+json) and every answer, including those of requests already under way, closes its
 * connection. Node's `server.close()` ends only the connections idle at that moment; one that was busy stays open
 * after its answer for the keep-alive timeout (72 s in Fastify), and the server's close waits for it: a drained node
 * was seen still running 20 s after SIGTERM, held by a kept-alive client or HAProxy connection. Requests still running
 * after two seconds are logged (method, route, age: never the URL's values, and the open connections); their connections are cut after
 * DRAIN_GRACE_MS. Stream sockets are not requests here: the stream hub closes them.
 */
export function installDraining(app: App): void {
  let draining = false
  const running = new Map<IncomingMessage, { method: string; route: string; startedAt: number }>()
  app.addHook('onRequest', async (request) => {
    if (draining) throw new Problem('server/unavailable', 'shutting down')
    if (request.headers.upgrade !== undefined) return
    const raw = request.raw
    running.set(raw, { method: request.method, route: request.routeOptions.url ?? 'unmatched', startedAt: Date.now() })
    raw.once('close', () => running.delete(raw))
  })
  app.addHook('onSend', async (_request, reply) => {
    if (draining) reply.header('connection', 'close')
  })
  // What still holds the close: requests, and connections (stream sockets included) that are not idle.
  const report = (message: string) =>
    app.server.getConnections((_error, connections) => {
      if (running.size === 0 && !connections) return
      const now = Date.now()
      const requests = [...running.values()]
        .slice(0, 20)
        .map(({ method, route, startedAt }) => ({ method, route, runningMs: now - startedAt }))
      app.log.warn({ connections, count: running.size, requests }, message)
    })
  app.addHook('preClose', async () => {
    draining = true
    setTimeout(() => report('draining: requests still running'), DRAIN_REPORT_MS).unref()
    setTimeout(() => {
      report('draining: cutting the connections of requests still running')
      app.server.closeAllConnections()
    }, DRAIN_GRACE_MS).unref()
  })
}
