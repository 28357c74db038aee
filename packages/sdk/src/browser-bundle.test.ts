import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { build } from 'esbuild'

test('the SDK bundles for browsers with no Node built-in', async () => {
  const result = await build({
    entryPoints: [path.join(import.meta.dirname, 'index.ts')],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    logLevel: 'silent',
    metafile: true,
  })
  const inputs = Object.keys(result.metafile.inputs)
  assert.ok(inputs.some((file) => file.includes('jose')))
  assert.ok(!inputs.some((file) => file.startsWith('node:')), 'no node: imports')
  // TypeBox's compiler makes code with new Function, which a page's CSP without 'unsafe-eval' refuses.
  assert.ok(!inputs.some((file) => file.includes('@sinclair/typebox')), 'no schema compiler in the browser bundle')
  assert.equal(result.errors.length, 0)
})
