import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { type DatabaseHandle, migrateToLatest, openDatabase } from '../db/database.ts'
import { Keyring, KeyringError } from './keyring.ts'
import { LocalKeyFileProvider } from './local-key-file.ts'

const field = (rowId: string, column = 'display_name') => ({ table: 'customers', column, rowId })

function isDecryptFailure(error: unknown): boolean {
  assert.ok(error instanceof KeyringError)
  assert.equal(error.code, 'ERR_DECRYPT_FAILED')
  assert.equal(error.message, 'decryption failed')
  return true
}

describe('keyring: envelope encryption of columns at rest', () => {
  let database: DatabaseHandle
  let dir: string
  let keyFile: string
  let keyring: Keyring

  before(async () => {
    database = await openDatabase(
      { dataDir: '/unused', databasePoolSize: 1, statementTimeoutMs: 5000 },
      { inMemory: true },
    )
    await migrateToLatest(database.db)
    dir = mkdtempSync(path.join(os.tmpdir(), 'sr-keyring-'))
    keyFile = path.join(dir, 'keys', 'keyring.json')
    keyring = new Keyring(database.db, await LocalKeyFileProvider.open(keyFile, { create: true }))
    for (const id of ['ten_a', 'ten_b']) {
      await database.db.insertInto('tenants').values({ id, name: id, created_at: new Date() }).execute()
      await keyring.createTenantKeys(database.db, id)
    }
  })
  after(() => database.close())

  test('the key file is created for its owner only, holding one 256-bit key', () => {
    assert.equal(statSync(keyFile).mode & 0o777, 0o600)
    assert.equal(statSync(path.dirname(keyFile)).mode & 0o777, 0o700)
    const file = JSON.parse(readFileSync(keyFile, 'utf8'))
    assert.equal(Buffer.from(file.keys[file.current], 'base64').length, 32)
  })

  test('tenant keys are stored wrapped, never in clear', async () => {
    const rows = await database.db.selectFrom('tenant_keys').selectAll().where('tenant_id', '=', 'ten_a').execute()
    assert.deepEqual(rows.map((r) => r.purpose).sort(), ['data', 'index'])
    for (const row of rows) assert.equal(row.wrapped_key.length, 12 + 32 + 16)
  })

  test('a value round-trips, and its ciphertext hides it', async () => {
    const ciphertext = await keyring.encrypt('ten_a', field('cus_1'), 'Ada Lovelace')
    assert.ok(!ciphertext.includes(Buffer.from('Ada')))
    assert.equal(await keyring.decryptText('ten_a', field('cus_1'), ciphertext), 'Ada Lovelace')
    const again = await keyring.encrypt('ten_a', field('cus_1'), 'Ada Lovelace')
    assert.notDeepEqual(again, ciphertext, 'a fresh IV each time')
  })

  test('a ciphertext copied to another row, column or tenant does not decrypt', async () => {
    const ciphertext = await keyring.encrypt('ten_a', field('cus_1'), 'secret')
    await assert.rejects(keyring.decrypt('ten_a', field('cus_2'), ciphertext), isDecryptFailure)
    await assert.rejects(keyring.decrypt('ten_a', field('cus_1', 'external_ref'), ciphertext), isDecryptFailure)
    await assert.rejects(keyring.decrypt('ten_b', field('cus_1'), ciphertext), isDecryptFailure)
  })

  test('any tampered byte, a truncated value or garbage fails the same way', async () => {
    const ciphertext = await keyring.encrypt('ten_a', field('cus_1'), 'secret')
    for (let i = 0; i < ciphertext.length; i++) {
      const tampered = Buffer.from(ciphertext)
      tampered[i] = (tampered[i] as number) ^ 0x01
      await assert.rejects(keyring.decrypt('ten_a', field('cus_1'), tampered), isDecryptFailure)
    }
    await assert.rejects(keyring.decrypt('ten_a', field('cus_1'), ciphertext.subarray(0, 20)), isDecryptFailure)
    await assert.rejects(keyring.decrypt('ten_a', field('cus_1'), Buffer.alloc(0)), isDecryptFailure)
  })

  test('blind indexes match equal values in one context only, per tenant', async () => {
    const a = await keyring.blindIndex('ten_a', 'customers.external_ref', 'REF-1')
    assert.equal(a.length, 32)
    assert.deepEqual(await keyring.blindIndex('ten_a', 'customers.external_ref', 'REF-1'), a)
    assert.notDeepEqual(await keyring.blindIndex('ten_a', 'customers.external_ref', 'REF-2'), a)
    assert.notDeepEqual(await keyring.blindIndex('ten_a', 'channels.phone', 'REF-1'), a)
    assert.notDeepEqual(await keyring.blindIndex('ten_b', 'customers.external_ref', 'REF-1'), a)
  })

  test('a new data key encrypts new values; old values still decrypt', async () => {
    const old = await keyring.encrypt('ten_a', field('cus_9'), 'before')
    assert.equal(await keyring.rotateDataKey('ten_a'), 2)
    const fresh = await keyring.encrypt('ten_a', field('cus_9'), 'after')
    assert.equal(old.readUInt32BE(1), 1)
    assert.equal(fresh.readUInt32BE(1), 2)
    assert.equal(await keyring.decryptText('ten_a', field('cus_9'), old), 'before')
    assert.equal(await keyring.decryptText('ten_a', field('cus_9'), fresh), 'after')
  })

  test('rotating the KEK re-wraps every tenant key; another process keeps working and later starts clean', async () => {
    const before = await keyring.encrypt('ten_b', field('cus_7'), 'kept')
    // A second node that already runs, with the old key file in memory.
    const otherNode = new Keyring(database.db, await LocalKeyFileProvider.open(keyFile, { create: false }))
    const rotating = await LocalKeyFileProvider.open(keyFile, { create: false })
    const kekId = await rotating.rotate()
    assert.equal(kekId, 'kek-2')
    assert.equal(statSync(keyFile).mode & 0o777, 0o600)
    const rewrapped = await new Keyring(database.db, rotating).rewrapAll()
    assert.equal(rewrapped, 5) // ten_a: data v1, v2, index; ten_b: data, index
    const kekIds = await database.db.selectFrom('tenant_keys').select('kek_id').distinct().execute()
    assert.deepEqual(kekIds, [{ kek_id: 'kek-2' }])
    assert.equal(await new Keyring(database.db, rotating).rewrapAll(), 0, 'nothing left to re-wrap')
    // The running node meets kek-2, which it has not seen, re-reads the file and goes on.
    assert.equal(await otherNode.decryptText('ten_b', field('cus_7'), before), 'kept')
    // A node started after the rotation reads everything.
    const restarted = new Keyring(database.db, await LocalKeyFileProvider.open(keyFile, { create: false }))
    assert.equal(await restarted.decryptText('ten_b', field('cus_7'), before), 'kept')
    assert.equal(
      await restarted.decryptText('ten_a', field('cus_1'), await keyring.encrypt('ten_a', field('cus_1'), 'x')),
      'x',
    )
  })

  test('a missing key file is an error when not asked to create one', async () => {
    await assert.rejects(
      LocalKeyFileProvider.open(path.join(dir, 'absent.json'), { create: false }),
      /does not exist \(create it with `strongroom keys init`\)/,
    )
  })

  test('no error message carries key material', async () => {
    const file = JSON.parse(readFileSync(keyFile, 'utf8'))
    const secrets = Object.values(file.keys) as string[]
    const errors: string[] = []
    const ciphertext = await keyring.encrypt('ten_a', field('cus_1'), 'x')
    await keyring
      .decrypt('ten_b', field('cus_1'), ciphertext)
      .catch((e: Error) => errors.push(`${e.message} ${e.stack}`))
    await new Keyring(database.db, await LocalKeyFileProvider.open(keyFile, { create: false }))
      .decrypt('ten_zzz', field('cus_1'), ciphertext)
      .catch((e: Error) => errors.push(`${e.message} ${e.stack}`))
    assert.equal(errors.length, 2)
    for (const message of errors) for (const secret of secrets) assert.ok(!message.includes(secret))
  })
})
