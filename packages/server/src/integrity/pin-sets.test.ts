import assert from 'node:assert/strict'
import { webcrypto } from 'node:crypto'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { pinSetPolicyFetch } from '@strongroom/sdk/pins'
import {
  acceptPinSet,
  memoryPinSetVersionStore,
  type PinSet,
  PinSetError,
  pinnedFetch,
  spkiPin,
  verifyPinSet,
} from '@strongroom/sdk/pins-node'
import { signCompactJws } from '../platform/keyring/jws.ts'
import { openSigningKey } from '../platform/keyring/signing-keys.ts'
import { startTestServer, type TestServer } from '../testing/harness.ts'
import { currentPinSet, PinSetRotationError, pinSetKeys, publishPinSet } from './pin-sets.ts'
import { createRoot, issue, type TestCertificate } from './verifiers/testing/test-pki.ts'

const DAY = 86_400_000
const validity = () => ({ notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 30 * DAY) })

async function privateKeyPem(certificate: TestCertificate): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', certificate.keys.privateKey))
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END PRIVATE KEY-----\n`
}

describe('certificate pin sets: signed, served, rotated with overlap, enforced by the SDK', () => {
  let server: TestServer
  let root: TestCertificate
  let leaf: TestCertificate
  let api: Server
  let apiUrl: string

  before(async () => {
    server = await startTestServer()
    root = await createRoot('CN=Test Bank Root', validity())
    leaf = await issue(root, 'CN=localhost', validity())
    api = createServer({ key: await privateKeyPem(leaf), cert: leaf.pem }, (_request, response) => response.end('ok'))
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve))
    apiUrl = `https://localhost:${(api.address() as AddressInfo).port}/`
  })
  after(async () => {
    api.close()
    await server.stop()
  })

  const signingKey = async () => openSigningKey(server.ctx.db, server.keyProvider, 'pin-set')
  const pinOf = (certificate: TestCertificate) => spkiPin(certificate.der)
  const otherPin = Buffer.alloc(32, 7).toString('base64')

  test('a published set is served at the well-known path and verifies with the keys the app carries', async () => {
    const response0 = await fetch(`${server.url}/.well-known/strongroom-pins`)
    assert.equal(response0.status, 404)
    await publishPinSet(server.ctx.db, await signingKey(), { host: 'api.bank.example', pins: [otherPin], days: 30 })
    const response = await fetch(`${server.url}/.well-known/strongroom-pins`)
    assert.equal(response.headers.get('content-type'), 'application/jose')
    const keys = await pinSetKeys(server.ctx.db)
    const set = await verifyPinSet(await response.text(), keys)
    assert.deepEqual(set.hosts, { 'api.bank.example': [otherPin] })
  })

  test('a tampered, foreign-signed or expired set is refused', async () => {
    const current = (await currentPinSet(server.ctx.db))?.document as string
    const keys = await pinSetKeys(server.ctx.db)
    const [header, payload, signature] = current.split('.') as [string, string, string]
    const forged = JSON.parse(Buffer.from(payload, 'base64url').toString()) as PinSet
    forged.hosts['api.bank.example'] = ['attacker-pin']
    const tampered = `${header}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${signature}`
    await assert.rejects(verifyPinSet(tampered, keys), PinSetError)
    const stranger = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign']))
      .publicKey
    const strangerJwk = { ...(await webcrypto.subtle.exportKey('jwk', stranger)), kid: keys[0]?.kid }
    await assert.rejects(verifyPinSet(current, [strangerJwk as never]), PinSetError)
    // Signed by the right key, but as something else than a pin set (a JWT, say).
    const key = await signingKey()
    const otherType = signCompactJws(key, { typ: 'JWT' }, Buffer.from(payload, 'base64url'))
    await assert.rejects(verifyPinSet(otherType, keys), PinSetError)
    await assert.rejects(verifyPinSet(current, keys, new Date(Date.now() + 31 * DAY)), /outside its validity/)
    await assert.rejects(verifyPinSet(current, keys, new Date(Date.now() - DAY)), /outside its validity/)
  })

  test('rotation must overlap: a new pin joins the old one before the old one goes', async () => {
    const key = await signingKey()
    const newPin = Buffer.alloc(32, 9).toString('base64')
    const publish = (pins: string[], force = false) =>
      publishPinSet(server.ctx.db, key, { host: 'api.bank.example', pins, days: 30, force })
    await assert.rejects(publish([newPin]), PinSetRotationError)
    assert.deepEqual((await publish([otherPin, newPin])).hosts['api.bank.example'], [otherPin, newPin])
    assert.deepEqual((await publish([newPin])).hosts['api.bank.example'], [newPin])
    // An emergency (a stolen key) may skip the overlap, on purpose.
    assert.deepEqual((await publish([otherPin], true)).hosts['api.bank.example'], [otherPin])
    await assert.rejects(publish(['not-a-pin']), PinSetRotationError)
  })

  test('the SDK’s Node fetch reaches a pinned host only through a pinned key', async () => {
    const set = (pins: string[]): PinSet => ({
      version: 1,
      notBefore: new Date().toISOString(),
      notAfter: new Date(Date.now() + DAY).toISOString(),
      hosts: { localhost: pins },
    })
    const ok = async (pins: string[]) => (await pinnedFetch(set(pins), { ca: root.pem })(apiUrl)).text()
    assert.equal(await ok([pinOf(leaf)]), 'ok', 'the leaf key is pinned')
    assert.equal(await ok([otherPin, pinOf(root)]), 'ok', 'a key higher in the chain is pinned')
    const because = (pattern: RegExp) => (error: { cause?: Error }) => pattern.test(String(error.cause?.message))
    await assert.rejects(ok([otherPin]), because(/matches no pinned key/))
    const unpinned: PinSet = { ...set([otherPin]), hosts: { 'elsewhere.example': [otherPin] } }
    assert.equal(await (await pinnedFetch(unpinned, { ca: root.pem })(apiUrl)).text(), 'ok', 'other hosts unpinned')
    // Pinning narrows TLS, never replaces it: a pinned key on a certificate no trusted CA issued is still refused.
    await assert.rejects(pinnedFetch(set([pinOf(leaf)]))(apiUrl), because(/certificate/))
  })

  test('an app follows a rotation with overlap and refuses to be rolled back to an older set', async () => {
    const key = await signingKey()
    const keys = await pinSetKeys(server.ctx.db)
    const store = memoryPinSetVersionStore()
    const served = async () => (await fetch(`${server.url}/.well-known/strongroom-pins`)).text()
    const reach = async (set: PinSet) => (await pinnedFetch(set, { ca: root.pem })(apiUrl)).text()
    const because = (pattern: RegExp) => (error: { cause?: Error }) => pattern.test(String(error.cause?.message))
    // The API host still pins its old key (otherPin); its certificate has already moved to the new one (leaf).
    await publishPinSet(server.ctx.db, key, { host: 'localhost', pins: [otherPin], days: 30 })
    const old = await served()
    const before = await acceptPinSet(old, keys, store)
    await assert.rejects(reach(before), because(/matches no pinned key/))
    // Overlap: the new key joins the old one; the app takes the newer set and reaches the host.
    await publishPinSet(server.ctx.db, key, { host: 'localhost', pins: [otherPin, pinOf(leaf)], days: 30 })
    const overlapping = await acceptPinSet(await served(), keys, store)
    assert.equal(overlapping.version, before.version + 1)
    assert.equal(await reach(overlapping), 'ok')
    // The old key goes.
    await publishPinSet(server.ctx.db, key, { host: 'localhost', pins: [pinOf(leaf)], days: 30 })
    const current = await acceptPinSet(await served(), keys, store)
    assert.equal(await reach(current), 'ok')
    assert.equal(await store.load(), current.version)
    // An attacker who kept the old set (validly signed, still within its window) cannot roll the app back to it.
    await assert.rejects(acceptPinSet(old, keys, store), /older than one already accepted/)
    assert.equal(await store.load(), current.version)
    // The same set again is fine (the app refetches it at every start).
    assert.equal((await acceptPinSet(await served(), keys, store)).version, current.version)
  })

  test('a page enforces what it can of a pin set: https, and only to the hosts it names', async () => {
    const set: PinSet = {
      version: 1,
      notBefore: new Date().toISOString(),
      notAfter: new Date(Date.now() + DAY).toISOString(),
      hosts: { localhost: [pinOf(leaf)] },
    }
    const pageFetch = pinSetPolicyFetch(set, (input, init) => pinnedFetch(set, { ca: root.pem })(input, init))
    assert.equal(await (await pageFetch(apiUrl)).text(), 'ok')
    await assert.rejects(pageFetch(apiUrl.replace('https:', 'http:')), PinSetError)
    await assert.rejects(pageFetch('https://elsewhere.example/'), /not a host of the pin set/)
    await assert.rejects(pageFetch(new Request('https://__proto__/')), PinSetError)
  })
})
