import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { loadConfig } from '../platform/config.ts'
import { createHttpServer } from '../platform/http/fastify.ts'
import { createLogger } from '../platform/logging.ts'
import { createMetrics } from '../platform/metrics.ts'
import { startTestServer, type TestServer } from '../testing/harness.ts'
import { webRoutes } from './routes.ts'

/** A build laid out as Vite writes it: pages, hashed assets, and the manifest that says which page loads what. */
function fakeBuild(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'strongroom-web-'))
  const write = (file: string, content: string) => {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true })
    writeFileSync(path.join(dir, file), content)
  }
  for (const page of ['console', 'secure', 'simulator']) {
    write(
      `${page}/index.html`,
      `<!doctype html><title>${page}</title><script type="module" src="/assets/${page}-h4sh.js"></script>`,
    )
    write(`assets/${page}-h4sh.js`, `import './shared-h4sh.js'\nconsole.log(${JSON.stringify(page.repeat(200))})\n`)
  }
  write('assets/shared-h4sh.js', 'export const shared = 1\n')
  write('assets/console-h4sh.css', 'body { color: black }\n')
  write('assets/left-over-0ld.js', 'console.log("an old build")\n')
  const entry = (page: string) => ({
    file: `assets/${page}-h4sh.js`,
    isEntry: true,
    imports: ['_shared.js'],
    ...(page === 'console' ? { css: ['assets/console-h4sh.css'] } : {}),
  })
  write(
    '.vite/manifest.json',
    JSON.stringify({
      '_shared.js': { file: 'assets/shared-h4sh.js' },
      'console/index.html': entry('console'),
      'secure/index.html': entry('secure'),
      'simulator/index.html': entry('simulator'),
    }),
  )
  return dir
}

async function bareApp(mode: 'dev' | 'production', webDir: string) {
  const app = await createHttpServer({
    logger: createLogger('silent'),
    metrics: createMetrics(),
    bodyLimit: 1024,
    trustProxy: false,
  })
  const config = { ...loadConfig({}, { dataDir: webDir }), mode, webDir }
  await app.register(async (scope) => webRoutes(scope, { config, log: createLogger('silent') }))
  await app.ready()
  return app
}

describe('the web pages on a running server', () => {
  let dir: string
  let server: TestServer
  before(async () => {
    dir = fakeBuild()
    server = await startTestServer({ webDir: dir })
  })
  after(async () => {
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  for (const page of ['console', 'secure', 'simulator']) {
    test(`/${page}/ is served with a strict policy and revalidated on every load`, async () => {
      const response = await fetch(`${server.url}/${page}/`)
      assert.equal(response.status, 200)
      assert.equal(response.headers.get('content-type'), 'text/html; charset=utf-8')
      assert.match(await response.text(), new RegExp(`<title>${page}</title>`))
      const csp = response.headers.get('content-security-policy') ?? ''
      const directives = new Map(
        csp.split(';').map((d) => {
          const [name, ...values] = d.trim().split(/\s+/)
          return [name, values.join(' ')] as const
        }),
      )
      assert.equal(directives.get('default-src'), "'self'")
      assert.equal(directives.get('script-src'), "'self'")
      assert.equal(directives.get('frame-ancestors'), "'none'")
      assert.equal(directives.get('object-src'), "'none'")
      assert.equal(directives.get('connect-src'), `'self' ${server.url.replace('http://', 'ws://')}`)
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/)
      assert.equal(response.headers.get('referrer-policy'), 'no-referrer')
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff')
      assert.equal(response.headers.get('x-frame-options'), 'DENY')
      assert.equal(response.headers.get('cache-control'), 'no-cache')
      const etag = response.headers.get('etag')
      assert.ok(etag)
      const again = await fetch(`${server.url}/${page}/`, { headers: { 'if-none-match': etag } })
      assert.equal(again.status, 304)
    })
  }

  test('HEAD answers like GET, without the body (monitoring, curl -I)', async () => {
    const response = await fetch(`${server.url}/console/`, { method: 'HEAD' })
    assert.equal(response.status, 200)
    assert.match(response.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/)
    assert.equal(await response.text(), '')
    const api = await fetch(`${server.url}/v1/conversations`, { method: 'HEAD' })
    assert.equal(api.status, 401, 'an API route keeps its rule under HEAD')
  })

  test('a page without its trailing slash redirects to it', async () => {
    const response = await fetch(`${server.url}/console`, { redirect: 'manual' })
    assert.equal(response.status, 308)
    assert.equal(response.headers.get('location'), '/console/')
  })

  test('hashed assets are cached for a year, gzipped for clients that accept it, with the same headers', async () => {
    const plain = await fetch(`${server.url}/assets/console-h4sh.js`, { headers: { 'accept-encoding': 'identity' } })
    assert.equal(plain.status, 200)
    assert.equal(plain.headers.get('content-type'), 'text/javascript; charset=utf-8')
    assert.equal(plain.headers.get('cache-control'), 'public, max-age=31536000, immutable')
    assert.equal(plain.headers.get('content-encoding'), null)
    assert.equal(plain.headers.get('x-content-type-options'), 'nosniff')
    const body = await plain.text()
    assert.match(body, /consoleconsole/)

    const zipped = await server.app.inject({
      url: '/assets/console-h4sh.js',
      headers: { 'accept-encoding': 'br, gzip;q=0.8' },
    })
    assert.equal(zipped.headers['content-encoding'], 'gzip')
    assert.equal(gunzipSync(zipped.rawPayload).toString(), body)
    const refused = await server.app.inject({
      url: '/assets/console-h4sh.js',
      headers: { 'accept-encoding': 'gzip;q=0' },
    })
    assert.equal(refused.headers['content-encoding'], undefined)

    const css = await fetch(`${server.url}/assets/console-h4sh.css`)
    assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8')
  })

  test('only the files the pages load are served: not a left-over, not the manifest, nothing outside', async () => {
    for (const url of [
      '/assets/left-over-0ld.js',
      '/assets/..%2F.vite%2Fmanifest.json',
      '/assets/..%2Fconsole%2Findex.html',
      '/assets/%2e%2e',
      '/.vite/manifest.json',
      '/console/index.html',
      '/console/../secure/',
    ]) {
      const response = await server.app.inject({ url })
      if (url === '/console/../secure/') {
        // Normalized by the client or matched literally, it never escapes the build.
        assert.ok(response.statusCode === 404 || response.body.includes('<title>secure</title>'), url)
        continue
      }
      assert.equal(response.statusCode, 404, url)
      assert.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8', url)
    }
  })

  test('a forged Host header does not make its way into the policy', async () => {
    const response = await server.app.inject({ url: '/console/', headers: { host: 'evil.example; script-src *' } })
    const csp = String(response.headers['content-security-policy'])
    assert.match(csp, /connect-src 'self';/)
    assert.doesNotMatch(csp, /evil|\*/)
  })
})

describe('the web pages in production mode', () => {
  test('the simulator and its code are not served; the console and secure chat are', async () => {
    const dir = fakeBuild()
    const app = await bareApp('production', dir)
    try {
      assert.equal((await app.inject({ url: '/simulator/' })).statusCode, 404)
      assert.equal((await app.inject({ url: '/simulator' })).statusCode, 404)
      assert.equal((await app.inject({ url: '/assets/simulator-h4sh.js' })).statusCode, 404)
      assert.equal((await app.inject({ url: '/console/' })).statusCode, 200)
      assert.equal((await app.inject({ url: '/secure/' })).statusCode, 200)
      assert.equal((await app.inject({ url: '/assets/shared-h4sh.js' })).statusCode, 200)
    } finally {
      await app.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('without a web build', () => {
  test('the pages say how to build them, with the same strict headers, and are not cached', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'strongroom-web-empty-'))
    const app = await bareApp('dev', dir)
    try {
      const response = await app.inject({ url: '/console/' })
      assert.equal(response.statusCode, 503)
      assert.equal(response.headers['content-type'], 'text/html; charset=utf-8')
      assert.match(response.body, /npm run build/)
      assert.equal(response.headers['cache-control'], 'no-store')
      assert.match(String(response.headers['content-security-policy']), /frame-ancestors 'none'/)
      assert.equal((await app.inject({ url: '/assets/console-h4sh.js' })).statusCode, 404)
    } finally {
      await app.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
