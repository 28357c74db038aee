import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { eventually } from './eventually.ts'
import { skipUnlessPresent } from './requirements.ts'

describe('eventually', () => {
  test('gives the first value that satisfies the wait', async () => {
    let reads = 0
    assert.equal(
      await eventually(
        () => ++reads,
        (n) => n >= 3,
      ),
      3,
    )
  })

  test('throws on timeout, naming the last value read', async () => {
    await assert.rejects(
      eventually(
        () => 'unbound',
        (state) => state === 'bound',
        50,
      ),
      (error) => {
        assert.ok(error instanceof assert.AssertionError)
        assert.match(error.message, /after 50 ms; last read: 'unbound'/)
        return true
      },
    )
  })
})

describe('skipping tests that need a service', () => {
  test('nothing to skip when it is there', () => {
    assert.equal(skipUnlessPresent(false), false)
  })

  test('outside CI a missing service skips with the reason; under CI=true it fails', () => {
    const ci = process.env.CI
    try {
      process.env.CI = 'false'
      assert.equal(skipUnlessPresent('needs NATS_URL'), 'needs NATS_URL')
      process.env.CI = 'true'
      assert.throws(() => skipUnlessPresent('needs NATS_URL'), /needs NATS_URL: under CI=true this test must run/)
    } finally {
      if (ci === undefined) delete process.env.CI
      else process.env.CI = ci
    }
  })
})
