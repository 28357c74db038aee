import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { ArchiveMemberStore } from './member-store.ts'

describe('the archive member’s store, shared by partition workers', () => {
  let server: TestServer
  let bank: TestBank

  before(async () => {
    server = await startTestServer({ archiveMember: false })
    bank = await createTestBank(server)
  })
  after(() => server.stop())

  test('two workers making the tenant’s archive identity at once keep one: the first stored, read by both', async () => {
    const key = randomBytes(32)
    const [one, two] = [0, 1].map(() => new ArchiveMemberStore(server.ctx.db, bank.tenantId, key)) as [
      ArchiveMemberStore,
      ArchiveMemberStore,
    ]
    // Each looked first and found none (as SecureMessaging.open does before making one).
    assert.equal(await one.get('mls/signature-key'), undefined)
    assert.equal(await two.get('mls/signature-key'), undefined)
    const identity = (fill: number): [string, Uint8Array][] => [
      ['mls/signature-key', new Uint8Array(32).fill(fill)],
      ['mls/signature-public-key', new Uint8Array(32).fill(fill + 1)],
    ]
    const stored = await Promise.all([one.setAllIfAbsent(identity(1)), two.setAllIfAbsent(identity(7))])
    assert.deepEqual([...stored].sort(), [false, true])
    const winner = stored[0] ? 1 : 7
    for (const store of [one, two, new ArchiveMemberStore(server.ctx.db, bank.tenantId, key)]) {
      assert.deepEqual(await store.get('mls/signature-key'), new Uint8Array(32).fill(winner))
      assert.deepEqual(await store.get('mls/signature-public-key'), new Uint8Array(32).fill(winner + 1))
    }
  })
})
