import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createCustomer } from '../identity/customers.ts'
import { loadConfig } from '../platform/config.ts'
import { openDatabase } from '../platform/db/database.ts'
import { createLogger } from '../platform/logging.ts'
import { type RunningServer, startServer } from '../server.ts'
import { cliHarness } from '../testing/cli.ts'
import { eventually } from '../testing/eventually.ts'
import { needsPostgresAndNats } from '../testing/requirements.ts'
import { testKeyProvider } from '../testing/softhsm.ts'

describe('online data key rotation: announce, re-encrypt, retire', { skip: needsPostgresAndNats() }, () => {
  let server: RunningServer
  // Registered before the harness's own clean-up, which drops the database the server still uses.
  after(() => server?.close())
  const cli = cliHarness()
  let tenantId: string
  let token: string
  const customerIds: string[] = []

  const json = (args: string[]) => {
    const result = cli.run(args)
    assert.equal(result.status, 0, result.stderr)
    return JSON.parse(result.stdout)
  }
  /** The data key version each sealed customer column of the tenant is under. */
  const customerKeyVersions = async () => {
    const rows = await server.ctx.db
      .selectFrom('customers')
      .select(['external_ref', 'display_name'])
      .where('tenant_id', '=', tenantId)
      .execute()
    return new Set(rows.flatMap((r) => [r.external_ref, r.display_name].map((c) => Buffer.from(c).readUInt32BE(1))))
  }
  const newCustomerVersion = async (ref: string) => {
    const customer = await createCustomer(server.ctx, tenantId, { externalRef: ref, displayName: 'New' })
    const row = await server.ctx.db
      .selectFrom('customers')
      .select('display_name')
      .where('id', '=', customer.id)
      .executeTakeFirstOrThrow()
    return Buffer.from(row.display_name).readUInt32BE(1)
  }

  before(async () => {
    tenantId = json(['tenant', 'create', '--name', 'Rotating Bank']).id
    token = json(['staff', 'token', '--tenant', tenantId, '--name', 'ada', '--role', 'admin']).token
    customerIds.push(json(['customer', 'create', '--tenant', tenantId, '--ref', 'R-1', '--name', 'Before']).id)
    const config = loadConfig(
      {},
      {
        port: 0,
        dataDir: cli.dir,
        databaseUrl: cli.database.url,
        natsUrl: process.env.NATS_URL,
        logLevel: 'silent',
        devSeed: false,
        ...testKeyProvider().config,
      },
    )
    server = await startServer(config, { logger: createLogger('silent') })
    customerIds.push((await createCustomer(server.ctx, tenantId, { externalRef: 'R-2', displayName: 'Cached' })).id)
  })
  test('a rotated data key reaches the running server over the bus: it encrypts with it without restart', async () => {
    assert.equal(await newCustomerVersion('R-3'), 1)
    // The operator's shell names the bus the servers use; the command announces the new key on it.
    const rotation = cli.run(['keys', 'rotate', '--data-keys'], { NATS_URL: process.env.NATS_URL })
    assert.equal(rotation.status, 0, rotation.stderr)
    assert.equal(JSON.parse(rotation.stdout).dataKeysRotated, 1)
    await eventually(
      () => newCustomerVersion(`R-${Math.random()}`),
      (version) => version === 2,
    )
  })

  test('retiring the newest key or one that still seals values is refused, and changes nothing', async () => {
    const newest = cli.run(['keys', 'retire', '--tenant', tenantId, '--version', '2'])
    assert.equal(newest.status, 1)
    assert.match(newest.stderr, /data key version 2 is the newest/)
    const inUse = cli.run(['keys', 'retire', '--tenant', tenantId, '--version', '1'])
    assert.equal(inUse.status, 1)
    assert.match(inUse.stderr, /still seals \d+ value\(s\) in customers\.external_ref: run keys reencrypt first/)
    const unknown = cli.run(['keys', 'retire', '--tenant', tenantId, '--version', '9'])
    assert.match(unknown.stderr, /has no data key version 9/)
    assert.equal(cli.run(['keys', 'retire', '--tenant', tenantId]).status, 2)
    const keys = await server.ctx.db.selectFrom('tenant_keys').selectAll().where('tenant_id', '=', tenantId).execute()
    assert.ok(keys.every((k) => k.retired_at === null && k.wrapped_key.length > 0))
  })

  test('keys reencrypt moves every value to the newest key; the old one can then be retired', async () => {
    assert.deepEqual(await customerKeyVersions(), new Set([1, 2]))
    const moved = json(['keys', 'reencrypt', '--tenant', tenantId])
    assert.ok(moved.reencrypted[tenantId] >= 6, JSON.stringify(moved))
    assert.deepEqual(await customerKeyVersions(), new Set([2]))
    assert.deepEqual(json(['keys', 'reencrypt', '--tenant', tenantId]).reencrypted, { [tenantId]: 0 })

    assert.deepEqual(json(['keys', 'retire', '--tenant', tenantId, '--version', '1']), { tenantId, retired: 1 })
    const retired = await server.ctx.db
      .selectFrom('tenant_keys')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('version', '=', 1)
      .where('purpose', '=', 'data')
      .executeTakeFirstOrThrow()
    assert.ok(retired.retired_at)
    assert.equal(retired.wrapped_key.length, 0, 'the retired key is erased')
    const again = cli.run(['keys', 'retire', '--tenant', tenantId, '--version', '1'])
    assert.match(again.stderr, /already retired/)

    // Everything still reads, on the running server and on one started afterwards.
    const names = []
    for (const id of customerIds) {
      const read = await fetch(`${server.url}/v1/customers/${id}`, { headers: { authorization: `Bearer ${token}` } })
      assert.equal(read.status, 200)
      names.push((await read.json()).displayName)
    }
    assert.deepEqual(names, ['Before', 'Cached'])

    const database = await openDatabase(loadConfig({}, { dataDir: cli.dir, databaseUrl: cli.database.url }))
    try {
      const actions = await database.db
        .selectFrom('audit_events')
        .select(['action', 'outcome'])
        .where('tenant_id', '=', tenantId)
        .where('action', 'in', ['keys.reencrypt', 'keys.retire'])
        .execute()
      assert.ok(actions.some((a) => a.action === 'keys.reencrypt' && a.outcome === 'success'))
      assert.ok(actions.some((a) => a.action === 'keys.retire' && a.outcome === 'denied'))
      assert.ok(actions.some((a) => a.action === 'keys.retire' && a.outcome === 'success'))
    } finally {
      await database.close()
    }
  })
})
