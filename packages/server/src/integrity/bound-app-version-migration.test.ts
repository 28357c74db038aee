import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { Migrator } from 'kysely/migration'
import { type DatabaseHandle, migrateToLatest, openDatabase } from '../platform/db/database.ts'
import { migrationProvider } from '../platform/db/migrations/index.ts'

const BOUND_APP_VERSION_MIGRATION = '049-bound-app-version'

/**
 * Migration 049 gives App Attest keys attested before it the version their device's latest App Attest verdict carried
 * (which that evidence covered), so installed iPhones renew without attesting again; other keys get none.
 */
describe('migration 049: the version App Attest keys were attested for', () => {
  let database: DatabaseHandle

  before(async () => {
    database = await openDatabase(
      { dataDir: '/unused', databasePoolSize: 1, statementTimeoutMs: 5000 },
      { inMemory: true },
    )
    const names = Object.keys(await migrationProvider.getMigrations()).sort()
    const previous = names[names.indexOf(BOUND_APP_VERSION_MIGRATION) - 1] as string
    const { error } = await new Migrator({ db: database.db, provider: migrationProvider }).migrateTo(previous)
    if (error) throw error
  })
  after(() => database.close())

  test('an App Attest key takes its device’s App Attest verdict version; an Android key or a key without one, none', async () => {
    const { db } = database
    const now = new Date()
    await db.insertInto('tenants').values({ id: 'ten_a', name: 'A', created_at: now }).execute()
    const bytes = new Uint8Array([1])
    await db
      .insertInto('customers')
      .values({
        tenant_id: 'ten_a',
        id: 'cus_a',
        external_ref_index: bytes,
        external_ref: bytes,
        display_name: bytes,
        phone_number: null,
        phone_number_index: null,
        created_at: now,
      })
      .execute()
    const devices = [
      ['dev_iphone', 'apple-appattest', 'apple-appattest-assertion'],
      ['dev_pixel', 'android-key', 'android-key'],
      ['dev_new_iphone', 'apple-appattest', undefined],
    ] as const
    for (const [id, format, verdictFormat] of devices) {
      await db
        .insertInto('devices')
        .values({
          tenant_id: 'ten_a',
          id,
          customer_id: 'cus_a',
          jkt: `jkt-${id}`,
          public_jwk: '{}',
          label: id,
          status: 'active',
          created_at: now,
          wiped_at: null,
        })
        .execute()
      // The columns as they were before the migration: no bound_app_version yet.
      const attestation = {
        tenant_id: 'ten_a',
        device_id: id,
        format,
        app_id: 'com.bank.app',
        key_id: `key-${id}`,
        public_jwk: '{}',
        counter: 3,
        security_level: 'secure-enclave',
        attested_at: now,
        asserted_at: null,
        version_code: format === 'android-key' ? 320 : null,
      }
      await db
        .insertInto('device_attestations')
        .values(attestation as never)
        .execute()
      if (verdictFormat === undefined) continue
      await db
        .insertInto('device_integrity_verdicts')
        .values({
          tenant_id: 'ten_a',
          device_id: id,
          decision: 'allow',
          reason: 'ok',
          flags: '',
          format: verdictFormat,
          security_level: 'secure-enclave',
          app_version: '3.1.0',
          decided_at: now,
        })
        .execute()
    }
    assert.ok((await migrateToLatest(db)).includes(BOUND_APP_VERSION_MIGRATION))
    const rows = await db
      .selectFrom('device_attestations')
      .select(['device_id', 'bound_app_version'])
      .orderBy('device_id')
      .execute()
    assert.deepEqual(rows, [
      { device_id: 'dev_iphone', bound_app_version: '3.1.0' },
      { device_id: 'dev_new_iphone', bound_app_version: null },
      { device_id: 'dev_pixel', bound_app_version: null },
    ])
  })
})
