import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, test } from 'node:test'
import { loadConfig } from '../platform/config.ts'
import { openDatabase } from '../platform/db/database.ts'
import { createLogger } from '../platform/logging.ts'
import { startServer } from '../server.ts'
import { cliHarness } from '../testing/cli.ts'
import { testKeyProvider } from '../testing/softhsm.ts'
import { archiveRecords } from './append.ts'
import { verifyBundle } from './bundle.ts'

describe('the strongroom command for the compliance archive', () => {
  const cli = cliHarness()
  const run = cli.run

  test('archive export writes a signed bundle that verifies offline; archive verify names a tampered record', async () => {
    const tenant = JSON.parse(run(['tenant', 'create', '--name', 'Archived Bank']).stdout)
    const customer = JSON.parse(
      run(['customer', 'create', '--tenant', tenant.id, '--ref', 'A-1', '--name', 'Archived Customer']).stdout,
    )
    const config = loadConfig(
      {},
      {
        port: 0,
        dataDir: cli.dir,
        databaseUrl: cli.database.url,
        logLevel: 'silent',
        devSeed: false,
        ...testKeyProvider().config,
      },
    )
    const server = await startServer(config, { logger: createLogger('silent') })
    try {
      const inputs = [1, 2, 3].map((i) => ({
        tenantId: tenant.id,
        recordClass: 'public-message' as const,
        sourceRef: `channel:cli:${i}`,
        conversationId: null,
        conversationSeq: null,
        customerId: customer.id,
        occurredAt: new Date(),
        content: { text: `public message ${i}` },
      }))
      await archiveRecords(server.ctx, inputs)
      await server.flushArchive()
    } finally {
      await server.close()
    }
    const file = path.join(cli.dir, 'case.jsonl')
    const exported = run(['archive', 'export', '--tenant', tenant.id, '--customer', customer.id, '--out', file])
    assert.equal(exported.status, 0, exported.stderr)
    assert.equal(JSON.parse(exported.stdout).records, 3)
    const bundle = readFileSync(file, 'utf8')
    assert.deepEqual(verifyBundle(bundle), { ok: true, records: 3 })
    assert.equal(verifyBundle(bundle.replace('public message 2', 'public message 7')).ok, false)
    const again = run(['archive', 'export', '--tenant', tenant.id, '--customer', customer.id, '--out', file])
    assert.equal(again.status, 1, 'an existing file is never overwritten')
    assert.equal(run(['archive', 'export', '--tenant', tenant.id, '--out', file]).status, 2)

    // The archive's KEK is rotated: its keys are re-wrapped, and the archive still reads.
    const rotated = JSON.parse(run(['keys', 'rotate', '--archive']).stdout)
    // The second KEK: of the key file, or of the archive's own objects in the HSM.
    assert.match(rotated.archiveKekId, /^(hsm-archive-)?kek-2$/)
    assert.ok(rotated.rewrapped >= 1)
    const reexported = path.join(cli.dir, 'case-after-rotation.jsonl')
    assert.equal(
      run(['archive', 'export', '--tenant', tenant.id, '--customer', customer.id, '--out', reexported]).status,
      0,
    )
    assert.match(readFileSync(reexported, 'utf8'), /public message 2/)

    const trusted = path.join(cli.dir, 'trusted.jwks')
    writeFileSync(trusted, run(['keys', 'export-public']).stdout)
    assert.equal(run(['archive', 'verify', '--keys', trusted]).status, 0)
    const direct = await openDatabase(config)
    await direct.db
      .updateTable('archive_records')
      .set({ occurred_at: new Date(0) })
      .where('tenant_id', '=', tenant.id)
      .where('seq', '=', 2)
      .execute()
    await direct.close()
    const tampered = run(['archive', 'verify', '--keys', trusted, '--tenant', tenant.id])
    assert.equal(tampered.status, 1)
    assert.equal(tampered.stderr, `strongroom: archive chain ${tenant.id} fails at record 2: record altered\n`)
  })
})
