import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { after, describe, test } from 'node:test'
import { ProviderRejectedError, ProviderUnavailableError } from './errors.ts'
import { type FakeProvider, recordingSleep, type ScriptedReply, startFakeProvider } from './fake-provider.ts'
import { parseRetryAfter, sendWithRetries } from './retry.ts'

const providers: FakeProvider[] = []
after(() => Promise.all(providers.map((p) => p.close())))

async function fake(script: ScriptedReply[]): Promise<FakeProvider> {
  const provider = await startFakeProvider(script)
  providers.push(provider)
  return provider
}

function request(provider: FakeProvider) {
  return {
    url: `${provider.baseUrl}/send`,
    headers: { 'content-type': 'application/json', 'idempotency-key': 'key-1' },
    body: '{"hello":"world"}',
  }
}

describe('sending with retries', () => {
  test('503 twice, then success: three identical requests, exponential backoff with jitter between them', async () => {
    const provider = await fake([{ status: 503 }, { status: 503 }, { status: 200, json: { id: 'm1' } }])
    const { sleep, delays } = recordingSleep()
    const body = await sendWithRetries(request(provider), { sleep, random: () => 0, baseDelayMs: 100 })
    assert.deepEqual(body, { id: 'm1' })
    assert.equal(provider.requests.length, 3)
    for (const sent of provider.requests) {
      assert.equal(sent.body, '{"hello":"world"}')
      assert.equal(sent.headers['idempotency-key'], 'key-1')
    }
    // With no jitter the waits are the lower halves of 100 and 200 ms; with full jitter the upper bounds.
    assert.deepEqual(delays, [50, 100])
    const jittered = recordingSleep()
    await sendWithRetries(request(await fake([{ status: 502 }, { status: 500 }, { status: 200 }])), {
      sleep: jittered.sleep,
      random: () => 0.999_999,
      baseDelayMs: 100,
    })
    assert.deepEqual(jittered.delays, [100, 200])
  })

  test('the backoff is capped at the maximum delay', async () => {
    const provider = await fake([{ status: 503 }])
    const { sleep, delays } = recordingSleep()
    await assert.rejects(
      sendWithRetries(request(provider), {
        sleep,
        random: () => 1,
        baseDelayMs: 1000,
        maxDelayMs: 3000,
        maxAttempts: 5,
      }),
      ProviderUnavailableError,
    )
    assert.deepEqual(delays, [1000, 2000, 3000, 3000])
  })

  test('a 400 is final: one request, a rejection carrying the status and the provider code', async () => {
    const provider = await fake([
      { status: 400, json: { error: { code: 100, message: 'Invalid parameter +15551234567' } } },
    ])
    const { sleep, delays } = recordingSleep()
    const error = await sendWithRetries(request(provider), { sleep }).catch((e: unknown) => e)
    assert.ok(error instanceof ProviderRejectedError)
    assert.equal(error.code, 'provider/rejected')
    assert.equal(error.status, 400)
    assert.equal(error.providerCode, '100')
    assert.equal(error.message, 'provider rejected the message with HTTP 400')
    assert.equal(provider.requests.length, 1)
    assert.deepEqual(delays, [])
  })

  test('other 4xx are final too, and a redirect is not followed', async () => {
    for (const status of [401, 403, 404, 409, 422, 302]) {
      const provider = await fake([{ status, headers: { location: 'http://127.0.0.1:1/elsewhere' } }])
      await assert.rejects(sendWithRetries(request(provider), { sleep: async () => {} }), (error) => {
        assert.ok(error instanceof ProviderRejectedError)
        assert.equal(error.status, status)
        assert.equal(error.providerCode, undefined)
        return true
      })
      assert.equal(provider.requests.length, 1)
    }
  })

  test('429 with Retry-After in seconds waits that long', async () => {
    const provider = await fake([
      { status: 429, headers: { 'retry-after': '3' } },
      { status: 201, json: {} },
    ])
    const { sleep, delays } = recordingSleep()
    await sendWithRetries(request(provider), { sleep })
    assert.deepEqual(delays, [3000])
    assert.equal(provider.requests.length, 2)
  })

  test('Retry-After as an HTTP date is measured against the injected clock', async () => {
    const now = Date.parse('2026-03-01T12:00:00Z')
    const provider = await fake([
      { status: 503, headers: { 'retry-after': 'Sun, 01 Mar 2026 12:00:07 GMT' } },
      { status: 200, json: {} },
    ])
    const { sleep, delays } = recordingSleep()
    await sendWithRetries(request(provider), { sleep, now: () => now })
    assert.deepEqual(delays, [7000])
    assert.equal(parseRetryAfter('Sun, 01 Mar 2026 11:59:00 GMT', now), 0)
    assert.equal(parseRetryAfter('soon', now), undefined)
    assert.equal(parseRetryAfter(null, now), undefined)
  })

  test('a Retry-After longer than we wait in place ends the attempts and is handed to the caller', async () => {
    const provider = await fake([{ status: 429, headers: { 'retry-after': '120' } }])
    const { sleep, delays } = recordingSleep()
    const error = await sendWithRetries(request(provider), { sleep, maxRetryAfterMs: 60_000 }).catch((e: unknown) => e)
    assert.ok(error instanceof ProviderUnavailableError)
    assert.equal(error.attempts, 1)
    assert.equal(error.lastStatus, 429)
    assert.equal(error.retryAfterMs, 120_000)
    assert.equal(provider.requests.length, 1)
    assert.deepEqual(delays, [])
  })

  test('a dropped connection is retried', async () => {
    const provider = await fake(['drop', { status: 200, json: { ok: true } }])
    const { sleep, delays } = recordingSleep()
    assert.deepEqual(await sendWithRetries(request(provider), { sleep }), { ok: true })
    assert.equal(provider.requests.length, 2)
    assert.equal(delays.length, 1)
  })

  test('after the last attempt fails the error says how many were made and how the last one ended', async () => {
    const provider = await fake([{ status: 503 }])
    const error = await sendWithRetries(request(provider), { sleep: async () => {}, maxAttempts: 3 }).catch(
      (e: unknown) => e,
    )
    assert.ok(error instanceof ProviderUnavailableError)
    assert.equal(error.code, 'provider/unavailable')
    assert.equal(error.attempts, 3)
    assert.equal(error.lastStatus, 503)
    assert.equal(error.message, 'provider unavailable after 3 attempts')
    assert.equal(provider.requests.length, 3)

    const unreachable = await fake(['drop'])
    const networkError = await sendWithRetries(request(unreachable), { sleep: async () => {}, maxAttempts: 2 }).catch(
      (e: unknown) => e,
    )
    assert.ok(networkError instanceof ProviderUnavailableError)
    assert.equal(networkError.lastStatus, undefined)
    assert.doesNotMatch(networkError.message, /127\.0\.0\.1|send/)
  })

  test('options passed as undefined keep their defaults', async () => {
    const provider = await fake([{ status: 503 }])
    const { sleep, delays } = recordingSleep()
    await assert.rejects(
      sendWithRetries(request(provider), { sleep, maxAttempts: undefined, baseDelayMs: undefined, random: () => 0 }),
      ProviderUnavailableError,
    )
    assert.equal(provider.requests.length, 4)
    assert.deepEqual(delays, [250, 500, 1000])
  })

  test('a provider that does not answer in time counts as a network error', async () => {
    const silent = createServer(() => {})
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const address = silent.address()
    assert.ok(address && typeof address === 'object')
    try {
      const error = await sendWithRetries(
        { url: `http://127.0.0.1:${address.port}/send`, headers: {}, body: '' },
        { sleep: async () => {}, maxAttempts: 2, timeoutMs: 50 },
      ).catch((e: unknown) => e)
      assert.ok(error instanceof ProviderUnavailableError)
      assert.equal(error.attempts, 2)
    } finally {
      silent.closeAllConnections()
      silent.close()
    }
  })
})
