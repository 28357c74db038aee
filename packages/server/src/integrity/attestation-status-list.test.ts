import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import { AttestationStatusList, parseAttestationStatusList } from './attestation-status-list.ts'
import { AttestationError } from './verifiers/verifier.ts'

// The shape of Google's published list (https://android.googleapis.com/attestation/status), entries abridged.
const GOOGLE_SAMPLE = {
  entries: {
    '2c8cdddfd5e03bfc': {
      status: 'REVOKED',
      expires: '2020-11-13',
      reason: 'KEY_COMPROMISE',
      comment: 'Key stored on unsecure system',
    },
    c8966fcb2fbb0d7a: {
      status: 'SUSPENDED',
      reason: 'SOFTWARE_FLAW',
      comment: 'Bug in keystore causes this key malfunction b/555555',
    },
    '0Abc': { status: 'SUPERSEDED_IN_THE_FUTURE' },
  },
}

const unavailable = (error: unknown) =>
  error instanceof AttestationError && error.code === 'revocation-status-unavailable'

describe("Google's Android attestation status list", () => {
  test('revoked and suspended serials are named, whatever case or leading zeros; others are in good standing', () => {
    const entries = parseAttestationStatusList(JSON.stringify(GOOGLE_SAMPLE))
    assert.deepEqual(entries.get('2c8cdddfd5e03bfc'), { status: 'REVOKED', reason: 'KEY_COMPROMISE' })
    assert.deepEqual(entries.get('c8966fcb2fbb0d7a'), { status: 'SUSPENDED', reason: 'SOFTWARE_FLAW' })
    // A status Google adds later is not read as good standing.
    assert.equal(entries.get('abc')?.status, 'SUSPENDED')
    assert.equal(entries.get('1234'), undefined)
  })

  test('a malformed list is refused whole', () => {
    for (const text of ['not json', '{}', '{"entries": []}', '{"entries": {"zz": {"status": "REVOKED"}}}']) {
      assert.throws(() => parseAttestationStatusList(text))
    }
  })

  test('from a file: answers after loading, keeps the last good list when a refresh fails, fails closed when stale', async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'sr-status-')), 'status.json')
    let now = 1_000_000
    const list = new AttestationStatusList({ source: file, refreshMs: 30_000, maxAgeMs: 60_000, now: () => now })
    // Never loaded: no answer, rather than "not revoked".
    assert.throws(() => list.isRevoked('2c8cdddfd5e03bfc'), unavailable)
    writeFileSync(file, JSON.stringify(GOOGLE_SAMPLE))
    await list.refresh()
    assert.equal(list.isRevoked('2C8CDDDFD5E03BFC'), true)
    assert.equal(list.isRevoked('00c8966fcb2fbb0d7a'), true)
    assert.equal(list.isRevoked('1234'), false)
    // A serial revoked since: seen at the next scheduled refresh, not before.
    writeFileSync(file, JSON.stringify({ entries: { ...GOOGLE_SAMPLE.entries, '1234': { status: 'REVOKED' } } }))
    now += 10_000
    await list.refreshIfDue()
    assert.equal(list.isRevoked('1234'), false)
    now += 20_000
    await list.refreshIfDue()
    assert.equal(list.isRevoked('1234'), true)
    writeFileSync(file, '{"entries": 5}')
    await assert.rejects(list.refresh())
    now += 59_000
    assert.equal(list.isRevoked('2c8cdddfd5e03bfc'), true)
    now += 2000
    assert.throws(() => list.isRevoked('2c8cdddfd5e03bfc'), unavailable)
  })

  test('from a URL: a refresh picks up a newly revoked serial; an HTTP error keeps the list', async () => {
    let body = JSON.stringify({ entries: {} })
    let status = 200
    const server = createServer((_request, response) => {
      response.writeHead(status, { 'content-type': 'application/json' }).end(body)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/attestation/status`
      const list = new AttestationStatusList({ source: url, refreshMs: 30_000, maxAgeMs: 60_000 })
      await list.refresh()
      assert.equal(list.isRevoked('2c8cdddfd5e03bfc'), false)
      body = JSON.stringify(GOOGLE_SAMPLE)
      await list.refresh()
      assert.equal(list.isRevoked('2c8cdddfd5e03bfc'), true)
      status = 503
      await assert.rejects(list.refresh(), /HTTP 503/)
      assert.equal(list.isRevoked('2c8cdddfd5e03bfc'), true)
    } finally {
      server.close()
    }
  })
})
