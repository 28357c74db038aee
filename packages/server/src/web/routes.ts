import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { Problem } from '../platform/http/problems.ts'
import { loadWebBuild, type StaticFile, type WebPage, webPages } from './static-pages.ts'

const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/

/**
 * The page's Content-Security-Policy: scripts, styles, images and fonts from this server only (and pictures the page
 * itself decrypted, as blob: URLs: a secure chat's attachments; never SVG, which the SDK does not accept), no inline
 * script or style, no eval, no plug-ins, not framed by anyone, and connections only back to this server (HTTP and its
 * WebSocket). The WebSocket origin is named as well as 'self' for browsers that do not count ws: as 'self'.
 */
export function contentSecurityPolicy(request: FastifyRequest): string {
  const secure = request.protocol === 'https'
  const host = request.host
  const socket = HOST.test(host) ? ` ${secure ? 'wss' : 'ws'}://${host}` : ''
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob:",
    "font-src 'self'",
    `connect-src 'self'${socket}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
    ...(secure ? ['upgrade-insecure-requests'] : []),
  ].join('; ')
}

/** Headers every page and asset carries, beyond those on every response (platform/http/security-headers.ts). */
function securityHeaders(request: FastifyRequest, reply: FastifyReply): void {
  reply
    .header('content-security-policy', contentSecurityPolicy(request))
    .header('cross-origin-opener-policy', 'same-origin')
    .header('cross-origin-resource-policy', 'same-origin')
    .header('permissions-policy', 'camera=(), microphone=(), geolocation=(), payment=(), usb=()')
}

function sendFile(request: FastifyRequest, reply: FastifyReply, file: StaticFile, cacheControl: string) {
  securityHeaders(request, reply)
  reply.header('cache-control', cacheControl).header('etag', file.etag).header('vary', 'accept-encoding')
  if (request.headers['if-none-match'] === file.etag) return reply.status(304).send()
  reply.type(file.contentType)
  if (file.gzipped && acceptsGzip(request.headers['accept-encoding'])) {
    return reply.header('content-encoding', 'gzip').send(file.gzipped)
  }
  return reply.send(file.body)
}

function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false
  return header.split(',').some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(';')
    return coding?.trim() === 'gzip' && !params.some((p) => /^\s*q=0(\.0*)?\s*$/.test(p))
  })
}

const notBuiltPage = Buffer.from(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Strongroom: web pages not built</title></head>
<body><main><h1>The web pages are not built</h1>
<p>This server has no build of the agent console and the secure chat. Build them with <code>npm run build</code> in
the Strongroom directory (or set <code>STRONGROOM_WEB_DIR</code> to where they were built), then restart the server.
In dev mode, <code>npm start</code> builds them by itself when they are missing.</p></main></body></html>
`)

/**
 * Serves the web build: `/console/` (agents), `/secure/` (customers) and, in dev mode only, `/simulator/`, with their
 * hashed assets under `/assets/`. Pages are HTML revalidated on every load (no-cache); assets are named by their
 * content hash and cached for a year.
 */
export async function webRoutes(app: App, ctx: Pick<ServerContext, 'config' | 'log'>): Promise<void> {
  const served: WebPage[] = webPages.filter((page) => page !== 'simulator' || ctx.config.mode === 'dev')
  const build = loadWebBuild(ctx.config.webDir, served)
  if (!build) ctx.log.warn({ webDir: ctx.config.webDir }, 'web pages not built: run `npm run build`')

  // The web pages and their hashed assets (packages/web); the simulator's only in dev mode.
  for (const page of served) {
    app.get(`/${page}`, { config: { access: allow.anyone }, schema: { hide: true } }, async (_request, reply) =>
      reply.redirect(`/${page}/`, 308),
    )
    app.get(`/${page}/`, { config: { access: allow.anyone }, schema: { hide: true } }, async (request, reply) => {
      const file = build?.pages.get(page)
      if (!file) {
        securityHeaders(request, reply)
        return reply.status(503).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(notBuiltPage)
      }
      return sendFile(request, reply, file, 'no-cache')
    })
  }
  app.get<{ Params: { file: string } }>(
    '/assets/:file',
    { config: { access: allow.anyone }, schema: { hide: true } },
    async (request, reply) => {
      const file = build?.assets.get(request.params.file)
      if (!file) throw new Problem('request/not-found')
      return sendFile(request, reply, file, 'public, max-age=31536000, immutable')
    },
  )
}
