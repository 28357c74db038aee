/**
 * One wire schema (issue 19): the SDK's modules call the server's JSON routes by name through the wire contract
 * (`ClientCore.call`, `postWithoutCredentials`), so that each answer's type is the `Static` type of the schema the
 * server answers with and a mismatch does not compile. `request`, whose answer type is written by hand, is left to
 * apps, for routes no method covers.
 */
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'

/** Where `request` may be called: where `request` and `call` are defined, and the consent receipt JWKS (no schema). */
const DEFINES_REQUEST = 'clients/client-core.ts'

/** The lines of a module that call `request` on a client or transport (the Web Locks API's is another thing). */
function handTypedRequests(source: string): number[] {
  return source
    .split('\n')
    .flatMap((line, index) =>
      /\.request\s*[<(]/.test(line) && !line.includes('navigator.locks.request') ? [index + 1] : [],
    )
}

test("the SDK's modules call the server's routes through the wire contract, not by hand-typed requests", async () => {
  const modules = (await readdir(import.meta.dirname, { recursive: true })).filter(
    (file) => file.endsWith('.ts') && !file.endsWith('.test.ts') && file !== DEFINES_REQUEST,
  )
  assert.ok(modules.length > 50)
  const found: Record<string, number[]> = {}
  for (const module of modules) {
    const lines = handTypedRequests(await readFile(path.join(import.meta.dirname, module), 'utf8'))
    if (lines.length > 0) found[module] = lines
  }
  assert.deepEqual(found, {})
})

test('a hand-typed request is found, a call by route name and the Web Locks API are not', () => {
  const source = [
    "const devices = await this.call('GET /v1/devices')",
    "const staff = await this.request<{ staff: StaffMember[] }>('GET', '/v1/staff')",
    "await navigator.locks.request('store', operation)",
    "await client.request('POST', '/v1/e2e/key-packages', body)",
  ].join('\n')
  assert.deepEqual(handTypedRequests(source), [2, 4])
})
