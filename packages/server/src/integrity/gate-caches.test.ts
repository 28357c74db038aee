/**
 * What the API gate keeps per node to stay cheap must never let through what the database or the signature would
 * refuse: a remembered token still expires on time, a forged one is still verified, and a version switched off on one
 * node is refused on another as soon as the bus tells it.
 */
import assert from 'node:assert/strict'
import { after, before, describe, mock, test } from 'node:test'
import { Problem } from '../platform/http/problems.ts'
import { openSigningKey, type SigningKey } from '../platform/keyring/signing-keys.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { DeactivatedAppVersions, deactivateAppVersion } from './app-versions.ts'
import { cachedIntegrityPolicy } from './policy.ts'
import { IntegrityTokenChecker, issueIntegrityToken } from './tokens.ts'

const refusedAs = (kind: string) => (error: unknown) => error instanceof Problem && error.kind === kind

describe('the integrity gate’s per-node caches', () => {
  let server: TestServer
  let bank: TestBank
  let key: SigningKey
  const device = { tenantId: '', deviceId: 'dev_cache', jkt: 'thumbprint-of-the-device-key' }
  const app = { appId: 'com.bank.app', appVersion: '4.0.0' }

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    device.tenantId = bank.tenantId
    key = await openSigningKey(server.ctx.db, server.keyProvider, 'integrity-token')
  })
  after(() => server.close())

  const token = (lifetimeSeconds: number) =>
    issueIntegrityToken(key, {
      tenantId: device.tenantId,
      deviceId: device.deviceId,
      keyThumbprint: device.jkt,
      ...app,
      verdict: 'allow',
      flags: ['emulator'],
      scope: 'full',
      lifetimeSeconds,
    })

  test('a remembered token is refused as expired once its lifetime is over', async (t) => {
    const checker = new IntegrityTokenChecker(server.ctx)
    const issued = await token(30)
    assert.deepEqual(await checker.check(issued, device), {
      scope: 'full',
      flags: ['emulator'],
      app,
      assertRequests: false,
    })
    const now = Date.now()
    t.mock.method(Date, 'now', () => now + 31_000)
    await assert.rejects(checker.check(issued, device), refusedAs('integrity/expired'))
    mock.restoreAll()
  })

  test('a token with a tampered signature or payload is verified, not matched to the remembered one', async () => {
    const checker = new IntegrityTokenChecker(server.ctx)
    const issued = await token(60)
    await checker.check(issued, device)
    const [header, payload, signature] = issued.split('.') as [string, string, string]
    const flipped = signature.slice(0, -2) + (signature.at(-2) === 'A' ? 'B' : 'A') + signature.at(-1)
    await assert.rejects(checker.check(`${header}.${payload}.${flipped}`, device), refusedAs('integrity/invalid'))
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString())
    const widened = Buffer.from(JSON.stringify({ ...claims, flags: [] })).toString('base64url')
    await assert.rejects(checker.check(`${header}.${widened}.${signature}`, device), refusedAs('integrity/invalid'))
  })

  test('a remembered token still names its device: another device or key gets wrong-device', async () => {
    const checker = new IntegrityTokenChecker(server.ctx)
    const issued = await token(60)
    await checker.check(issued, device)
    await assert.rejects(checker.check(issued, { ...device, jkt: 'another-key' }), refusedAs('integrity/wrong-device'))
    await assert.rejects(
      checker.check(issued, { ...device, deviceId: 'dev_other' }),
      refusedAs('integrity/wrong-device'),
    )
  })

  test('a version switched off on one node is refused by another node’s gate once the bus says so', async (t) => {
    // The clock stands still, so only the bus (not the list's lifetime running out) can make the other node look again.
    const now = Date.now()
    t.mock.method(Date, 'now', () => now)
    const thisNode = new DeactivatedAppVersions(server.ctx)
    const otherNode = new DeactivatedAppVersions(server.ctx)
    try {
      assert.equal(await otherNode.has(bank.tenantId, app), false) // now remembered by the other node
      await deactivateAppVersion(
        server.ctx,
        thisNode,
        bank.tenantId,
        { ...app, reason: 'test' },
        { kind: 'system', id: 'test' },
      )
      assert.equal(await thisNode.has(bank.tenantId, app), true)
      const deadline = performance.now() + 30_000
      while (!(await otherNode.has(bank.tenantId, app))) {
        assert.ok(performance.now() < deadline, 'the other node never learnt of the deactivation')
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      assert.equal(await otherNode.has(bank.tenantId, { ...app, appVersion: '4.0.1' }), false)
    } finally {
      thisNode.close()
      otherNode.close()
      mock.restoreAll()
    }
  })
  test('the tenant’s policy read again: whoever asks meanwhile waits for that one read, and is answered in turn', async (t) => {
    let reads = 0
    const db = new Proxy(server.ctx.db, {
      get(target, property) {
        if (property === 'selectFrom') reads++
        const value = Reflect.get(target, property)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    const policyOf = cachedIntegrityPolicy({ db })
    const answered: number[] = []
    const asking = (n: number) =>
      Array.from({ length: n }, (_, i) => policyOf(bank.tenantId).then(() => answered.push(i)))
    await Promise.all(asking(20))
    assert.equal(reads, 1)
    // Expired: the frames of a stream that ask during the new read go on in the order they asked.
    const now = Date.now()
    t.mock.method(Date, 'now', () => now + 6000)
    answered.length = 0
    await Promise.all(asking(20))
    assert.equal(reads, 2)
    assert.deepEqual(
      answered,
      Array.from({ length: 20 }, (_, i) => i),
    )
    mock.restoreAll()
  })
})
