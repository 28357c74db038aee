import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import vm from 'node:vm'
import { build } from 'esbuild'
import { CompactSign, exportJWK, generateKeyPair } from 'jose'

test('every entry a page or an app loads bundles for browsers with no Node built-in and no schema compiler', async () => {
  for (const entry of DEVICE_ENTRIES) {
    const result = await build({
      entryPoints: [path.join(import.meta.dirname, entry)],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
      metafile: true,
    })
    const inputs = Object.keys(result.metafile.inputs)
    assert.deepEqual(
      inputs.filter((file) => file.startsWith('node:')),
      [],
      `${entry}: no node: imports`,
    )
    // TypeBox's compiler makes code with new Function, which a page's CSP without 'unsafe-eval' refuses: the console
    // and the secure chat would not even show their sign-in form.
    assert.deepEqual(
      inputs.filter((file) => file.includes('@sinclair/typebox')),
      [],
      `${entry}: no schema compiler in the browser bundle`,
    )
    assert.equal(result.errors.length, 0)
  }
  const index = await build({
    entryPoints: [path.join(import.meta.dirname, 'index.ts')],
    bundle: true,
    platform: 'browser',
    write: false,
    logLevel: 'silent',
    metafile: true,
  })
  assert.ok(Object.keys(index.metafile.inputs).some((file) => file.includes('jose')))
})

/**
 * The entries an app loads on the device, under React Native's JavaScript engine (Hermes) or in a webview. `pins-node`,
 * `mls-node` and `simulator` are Node's own.
 */
const DEVICE_ENTRIES = ['index.ts', 'integrity.ts', 'pin-set.ts', 'secrets.ts', 'consent.ts', 'factors.ts', 'mls.ts']

/**
 * What a React Native app provides under Hermes (natively or through the polyfills docs/mobile.md names), and nothing
 * of Node: no Buffer, process, require or node: module.
 */
function hermesLikeGlobals() {
  const { crypto, CryptoKey, TextEncoder, TextDecoder, URL, atob, btoa, AbortController, AbortSignal } = globalThis
  const unreachable = () => Promise.reject(new Error('no network in this test'))
  class WebSocket {}
  return {
    ...{ crypto, CryptoKey, TextEncoder, TextDecoder, URL, atob, btoa, AbortController, AbortSignal, WebSocket },
    ...{ fetch: unreachable, setTimeout, clearTimeout, queueMicrotask, console },
  }
}

async function loadUnderHermesLikeGlobals(entry: string): Promise<Record<string, unknown>> {
  const result = await build({
    entryPoints: [path.join(import.meta.dirname, entry)],
    bundle: true,
    platform: 'neutral',
    mainFields: ['browser', 'module', 'main'],
    conditions: ['browser'],
    format: 'iife',
    globalName: 'sdk',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    metafile: true,
  })
  const nodeImports = Object.keys(result.metafile.inputs).filter((file) => file.startsWith('node:'))
  assert.deepEqual(nodeImports, [], `${entry} imports no node: module`)
  const context = vm.createContext(hermesLikeGlobals())
  vm.runInContext(`${result.outputFiles[0]?.text}\nglobalThis.sdk = sdk`, context, { filename: entry })
  return context.sdk as Record<string, unknown>
}

test('every entry a device loads runs with Hermes-like globals: no Node built-in, no Node global', async () => {
  // Loading is the check: a module that touches Buffer, process or require at load throws a ReferenceError here.
  for (const entry of DEVICE_ENTRIES) await loadUnderHermesLikeGlobals(entry)
  // And works there: the client data an attestation covers, and a signed pin set verified (WebCrypto, ES256).
  const integrity = await loadUnderHermesLikeGlobals('integrity.ts')
  const clientData = (integrity.attestationClientData as (c: string, a: object) => string)('abc', {
    appId: 'com.bank.app',
    appVersion: '3.2.0',
  })
  assert.equal(
    clientData,
    '{"appId":"com.bank.app","appVersion":"3.2.0","challenge":"abc","type":"strongroom-attestation/v1"}',
  )
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const set = {
    version: 7,
    notBefore: new Date(0).toISOString(),
    notAfter: '2999-01-01T00:00:00Z',
    hosts: { 'api.bank.example': [] },
  }
  const document = await new CompactSign(new TextEncoder().encode(JSON.stringify(set)))
    .setProtectedHeader({ alg: 'ES256', typ: 'strongroom-pin-set+jws', kid: 'k' })
    .sign(privateKey)
  const pins = await loadUnderHermesLikeGlobals('pin-set.ts')
  const store = (pins.memoryPinSetVersionStore as () => object)()
  const accept = pins.acceptPinSet as (d: string, k: object[], s: object) => Promise<{ version: number }>
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256' }
  assert.equal((await accept(document, [jwk], store)).version, 7)
})
