import type { App } from './fastify.ts'

/** Two years: what the HSTS preload list asks for. */
export const HSTS_VALUE = 'max-age=63072000'

/**
 * Headers on every response, API answers included (pages set their own, stricter Content-Security-Policy first):
 * no MIME sniffing, no referrer, never framed, and HSTS when the request came over TLS (directly, or through a proxy
 * the server trusts to say so in X-Forwarded-Proto).
 */
export function installSecurityHeaders(app: App): void {
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-content-type-options', 'nosniff')
    reply.header('referrer-policy', 'no-referrer')
    reply.header('x-frame-options', 'DENY')
    if (!reply.hasHeader('content-security-policy')) {
      reply.header('content-security-policy', "default-src 'none'; frame-ancestors 'none'")
    }
    if (request.protocol === 'https') reply.header('strict-transport-security', HSTS_VALUE)
  })
}
