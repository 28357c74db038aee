import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, test } from 'node:test'
import { loadConfig } from '../platform/config.ts'
import { openDatabase } from '../platform/db/database.ts'
import { latestMigration, migrationProvider } from '../platform/db/migrations/index.ts'
import { createLogger } from '../platform/logging.ts'
import { startServer } from '../server.ts'
import { cliHarness } from '../testing/cli.ts'

describe('the strongroom command', () => {
  const cli = cliHarness()
  const run = cli.run

  test('tenant, staff token and key rotation, then a server accepts the token', async () => {
    // Every migration the server has, in order, on a fresh database; the first and the newest named as a check.
    const { applied } = JSON.parse(run(['migrate']).stdout) as { applied: string[] }
    assert.deepEqual(applied, Object.keys(await migrationProvider.getMigrations()))
    assert.deepEqual([applied[0], applied.at(-1)], ['001-foundation', latestMigration])
    const tenant = JSON.parse(run(['tenant', 'create', '--name', 'Bank of Tests']).stdout)
    assert.match(tenant.id, /^ten_/)
    assert.deepEqual(
      JSON.parse(run(['tenant', 'list']).stdout).map((t: { name: string }) => t.name),
      ['Bank of Tests'],
    )
    const missingRole = run(['staff', 'token', '--tenant', tenant.id, '--name', 'alice'])
    assert.equal(missingRole.status, 2)
    assert.match(missingRole.stderr, /give --role to create one/)
    const issued = JSON.parse(
      run(['staff', 'token', '--tenant', tenant.id, '--name', 'alice', '--role', 'agent', '--ttl', '1h']).stdout,
    )
    assert.match(issued.token, /^srs_/)
    assert.equal(issued.role, 'agent')
    const narrow = JSON.parse(
      run(['staff', 'token', '--tenant', tenant.id, '--name', 'alice', '--scopes', 'conversations:read']).stdout,
    )
    assert.deepEqual(narrow.scopes, ['conversations:read'])
    const tooWide = run(['staff', 'token', '--tenant', tenant.id, '--name', 'alice', '--scopes', 'staff:admin'])
    assert.equal(tooWide.status, 1)
    assert.match(tooWide.stderr, /the agent role cannot hold staff:admin/)

    const existing = JSON.parse(
      run(['customer', 'create', '--tenant', tenant.id, '--ref', 'R-0', '--name', 'Before Rotation']).stdout,
    )
    const code = JSON.parse(run(['enrolment-code', '--tenant', tenant.id, '--customer', existing.id]).stdout)
    assert.match(code.code, /^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/)
    const foreign = run(['enrolment-code', '--tenant', tenant.id, '--customer', 'cus_nobody'])
    assert.equal(foreign.status, 1)
    assert.match(foreign.stderr, /No such resource: no such customer/)

    const rotated = JSON.parse(run(['keys', 'rotate', '--data-keys', '--signing-keys']).stdout)
    // The old data key and the index key are re-wrapped; the new data key is made under the new KEK.
    assert.deepEqual(rotated, {
      kekId: 'kek-2',
      rewrapped: 2,
      dataKeysRotated: 1,
      // The deployment's keys, then each bank's receipt and checkpoint keys, and the system audit chain's.
      signingKeys: [
        'mls-credential-1',
        'integrity-token-1',
        'pin-set-1',
        'wipe-command-1',
        `consent-receipt-${tenant.id}-1`,
        `audit-checkpoint-${tenant.id}-1`,
        `archive-checkpoint-${tenant.id}-1`,
        'audit-checkpoint-system-1',
      ],
    })

    const config = loadConfig(
      {},
      { dataDir: cli.dir, databaseUrl: cli.database.url, port: 0, devSeed: false, logLevel: 'silent' },
    )
    const server = await startServer(config, { logger: createLogger('silent') })
    try {
      const me = await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${issued.token}` } })
      assert.equal(me.status, 200)
      assert.equal((await me.json()).tenantId, tenant.id)
      // Data encrypted before the rotation, and after it, is readable.
      const before = await fetch(`${server.url}/v1/customers/${existing.id}`, {
        headers: { authorization: `Bearer ${issued.token}` },
      })
      assert.equal((await before.json()).displayName, 'Before Rotation')
      const created = await fetch(`${server.url}/v1/customers`, {
        method: 'POST',
        headers: { authorization: `Bearer ${issued.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ externalRef: 'R-1', displayName: 'After Rotation' }),
      })
      const customer = await created.json()
      const read = await fetch(`${server.url}/v1/customers/${customer.id}`, {
        headers: { authorization: `Bearer ${issued.token}` },
      })
      assert.equal((await read.json()).displayName, 'After Rotation')
      if (!cli.database.url) {
        // The embedded database belongs to the running server; the command says so instead of corrupting it.
        const busy = run(['tenant', 'list'])
        assert.equal(busy.status, 1)
        assert.match(busy.stderr, /is in use by process \d+: stop it first/)
      }
    } finally {
      await server.close()
    }

    // The checkpoint keys, exported once and kept outside the database, are what verification trusts.
    const trusted = path.join(cli.dir, 'trusted.jwks')
    writeFileSync(trusted, run(['keys', 'export-public']).stdout)
    // Stopping sealed the newest records with a checkpoint: nothing is left unsealed.
    const verified = run(['audit', 'verify', '--keys', trusted])
    assert.equal(verified.status, 0, verified.stderr)
    const chains = JSON.parse(verified.stdout) as { tenantId: string; ok: boolean; records: number }[]
    assert.deepEqual(
      chains.map((c) => [c.tenantId, c.ok]),
      [
        ['system', true],
        [tenant.id, true],
      ],
    )
    assert.ok((chains[1]?.records ?? 0) >= 5)
    // Someone with database access rewrites history: the command names the record.
    const direct = await openDatabase(config)
    await direct.db
      .updateTable('audit_events')
      .set({ outcome: 'failure' })
      .where('tenant_id', '=', tenant.id)
      .where('seq', '=', 2)
      .execute()
    await direct.close()
    const tampered = run(['audit', 'verify', '--keys', trusted, '--tenant', tenant.id])
    assert.equal(tampered.status, 1)
    assert.equal(tampered.stderr, `strongroom: audit chain ${tenant.id} fails at record 2: record altered\n`)
  })
})
