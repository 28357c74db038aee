import assert from 'node:assert/strict'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, test } from 'node:test'
import { cliHarness } from '../testing/cli.ts'

describe('strongroom customer export', () => {
  const cli = cliHarness()
  const run = cli.run

  test('writes everything held about a customer to a new file, readable by the operator only; never overwrites', () => {
    const tenant = JSON.parse(run(['tenant', 'create', '--name', 'Export Bank']).stdout)
    const customer = JSON.parse(
      run(['customer', 'create', '--tenant', tenant.id, '--ref', 'X-1', '--name', 'Exported Customer']).stdout,
    )
    const code = JSON.parse(run(['enrolment-code', '--tenant', tenant.id, '--customer', customer.id]).stdout)
    const file = path.join(cli.dir, 'subject.json')

    // Without the archive key file the export would be incomplete: refused, and no file is left behind.
    const noArchiveKey = run(['customer', 'export', '--tenant', tenant.id, '--customer', customer.id, '--out', file])
    assert.equal(noArchiveKey.status, 1)
    assert.ok(!existsSync(file))

    assert.equal(run(['keys', 'init', '--archive']).status, 0)
    const exported = run(['customer', 'export', '--tenant', tenant.id, '--customer', customer.id, '--out', file])
    assert.equal(exported.status, 0, exported.stderr)
    assert.deepEqual(JSON.parse(exported.stdout), {
      file,
      devices: 1,
      conversations: 0,
      archiveRecords: 0,
      auditEvents: 1,
    })
    assert.equal(statSync(file).mode & 0o777, 0o600)
    const document = JSON.parse(readFileSync(file, 'utf8'))
    assert.equal(document.type, 'strongroom-data-subject-export/v1')
    assert.equal(document.exportedBy, 'operator:')
    assert.equal(document.customer.displayName, 'Exported Customer')
    assert.deepEqual(
      document.devices.map((d: { id: string; status: string }) => [d.id, d.status]),
      [[code.deviceId, 'pending']],
    )
    assert.ok(!readFileSync(file, 'utf8').includes(code.code), 'the enrolment code is a secret')

    writeFileSync(file, 'kept')
    const again = run(['customer', 'export', '--tenant', tenant.id, '--customer', customer.id, '--out', file])
    assert.equal(again.status, 1)
    assert.equal(readFileSync(file, 'utf8'), 'kept')

    const unknown = path.join(cli.dir, 'nobody.json')
    const nobody = run(['customer', 'export', '--tenant', tenant.id, '--customer', 'cus_nobody', '--out', unknown])
    assert.equal(nobody.status, 1)
    assert.match(nobody.stderr, /no such customer/)
    assert.ok(!existsSync(unknown))
    assert.equal(run(['customer', 'export', '--tenant', tenant.id, '--out', unknown]).status, 2)
  })
})
