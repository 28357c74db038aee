/**
 * The OpenAPI document lints clean with Redocly's recommended rules (issue 23, item 6): every operation names the
 * credentials it takes (from its access rule), errors are `application/problem+json`, the document has a server. It
 * failed with 119 errors before. The four public metadata documents (JWKS, wipe keys, OAuth metadata, the MLS
 * credential authority) have no client error to declare and stay a warning.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { startTestServer, type TestServer } from '../../testing/harness.ts'

const redocly = path.resolve(import.meta.dirname, '../../../../../node_modules/.bin/redocly')

describe('the OpenAPI document under Redocly’s recommended rules', () => {
  let server: TestServer
  let dir: string
  let document: {
    paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, { content?: object }> }>>
  }

  before(async () => {
    server = await startTestServer()
    dir = mkdtempSync(path.join(os.tmpdir(), 'sr-openapi-'))
    document = await (await fetch(`${server.url}/openapi.json`)).json()
    writeFileSync(path.join(dir, 'openapi.json'), JSON.stringify(document))
  })
  after(async () => {
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test('no error', () => {
    const lint = spawnSync(
      process.execPath,
      [redocly, 'lint', '--extends=recommended', '--format=summary', path.join(dir, 'openapi.json')],
      { encoding: 'utf8', env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' } },
    )
    const output = `${lint.stdout}${lint.stderr}`
    assert.equal(lint.status, 0, output)
    assert.doesNotMatch(output, /^error/m)
    assert.deepEqual(output.match(/^warning.*$/gm), ['warning operation-4xx-response: 4'])
  })

  test('each operation says who may call it, and its errors are problem documents', () => {
    const operations = Object.entries(document.paths).flatMap(([url, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({ route: `${method.toUpperCase()} ${url}`, operation })),
    )
    const of = (route: string) => operations.find((o) => o.route === route)?.operation
    assert.deepEqual(of('GET /v1/secrets/{name}')?.security, [{ deviceToken: [] }])
    assert.deepEqual(of('POST /v1/consents')?.security, [{ staffToken: [] }, { clientToken: ['consents:write'] }])
    assert.deepEqual(of('POST /v1/devices')?.security, [{ dpopProof: [] }])
    assert.deepEqual(of('POST /v1/pivot/open')?.security, [])
    for (const { route, operation } of operations) {
      assert.ok(operation.security, `${route} declares its security`)
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) >= 400) {
          assert.deepEqual(Object.keys(response.content ?? {}), ['application/problem+json'], `${route} ${status}`)
        }
      }
    }
  })
})
