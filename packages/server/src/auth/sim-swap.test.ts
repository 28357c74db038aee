import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'

const number = '+447700900123'

async function check(server: TestServer, token: string, phoneNumber: string) {
  const response = await fetch(`${server.url}/v1/risk/sim-swap`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ phoneNumber }),
  })
  return { status: response.status, body: await response.json() }
}

describe('SIM-swap checks against the dev carrier simulator', () => {
  let server: TestServer
  let bank: TestBank

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
  })
  after(() => server.stop())

  const swap = (phoneNumber: string, hoursAgo: number) =>
    fetch(`${server.url}/dev/camara/sim-swaps/${encodeURIComponent(phoneNumber)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ swappedAt: new Date(Date.now() - hoursAgo * 3_600_000).toISOString() }),
    })

  test('no swap: SMS factors allowed; a swap within 72 h blocks them; an older one does not', async () => {
    assert.deepEqual((await check(server, bank.agentToken, number)).body, {
      swapped: false,
      latestSimChange: null,
      windowHours: 72,
      smsFactorsAllowed: true,
      risk: 'normal',
    })
    assert.equal((await swap(number, 10)).status, 204)
    const recent = (await check(server, bank.agentToken, number)).body
    assert.deepEqual([recent.swapped, recent.smsFactorsAllowed, recent.risk], [true, false, 'high'])
    await swap('+447700900124', 100)
    const old = (await check(server, bank.agentToken, '+447700900124')).body
    assert.deepEqual([old.swapped, old.smsFactorsAllowed], [false, true])
    assert.ok(old.latestSimChange)
  })

  test('each bank may set its own window', async () => {
    const other = await createTestBank(server, 'Cautious Bank')
    await fetch(`${server.url}/v1/policies/step-up`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${other.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ rules: [], simSwapWindowHours: 240 }),
    })
    await swap('+447700900125', 100)
    const strict = (await check(server, other.agentToken, '+447700900125')).body
    assert.deepEqual([strict.windowHours, strict.swapped, strict.smsFactorsAllowed], [240, true, false])
    const usual = (await check(server, bank.agentToken, '+447700900125')).body
    assert.deepEqual([usual.windowHours, usual.smsFactorsAllowed], [72, true])
  })

  test('a malformed number is refused; the audit log never holds the number', async () => {
    assert.equal((await check(server, bank.agentToken, '07700900123')).status, 400)
    await server.flushAudit()
    const rows = await server.ctx.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'risk.sim-swap.check')
      .execute()
    assert.ok(rows.length >= 3)
    assert.ok(!JSON.stringify(rows).includes('7700900'))
  })
})

describe('SIM-swap checks against a carrier that misbehaves: they fail closed', () => {
  let carrier: Server
  let behaviour: 'hang' | 'error' | 'garbage' | 'ok' = 'ok'
  const seen: { path: string; authorization: string | undefined; body: string }[] = []
  let server: TestServer
  let bank: TestBank

  before(async () => {
    carrier = createServer((request, response) => {
      let body = ''
      request.on('data', (chunk) => {
        body += chunk
      })
      request.on('end', () => {
        seen.push({ path: request.url ?? '', authorization: request.headers.authorization, body })
        if (behaviour === 'hang') return
        if (behaviour === 'error') return void response.writeHead(500).end()
        response.writeHead(200, { 'content-type': 'application/json' })
        if (behaviour === 'garbage') return void response.end('{"swapped": "maybe"}')
        response.end(request.url?.endsWith('/check') ? '{"swapped": false}' : '{"latestSimChange": null}')
      })
    })
    await new Promise<void>((resolve) => carrier.listen(0, '127.0.0.1', resolve))
    const simSwapUrl = `http://127.0.0.1:${(carrier.address() as AddressInfo).port}/sim-swap/v0`
    server = await startTestServer({ simSwapUrl, simSwapToken: 'carrier-token' })
    bank = await createTestBank(server)
  })
  after(async () => {
    await server.stop()
    carrier.closeAllConnections()
    carrier.close()
  })

  test('the request is the CAMARA wire format, with the carrier token', async () => {
    behaviour = 'ok'
    seen.length = 0
    assert.equal((await check(server, bank.agentToken, number)).status, 200)
    const checkCall = seen.find((s) => s.path === '/sim-swap/v0/check')
    assert.deepEqual(JSON.parse(checkCall?.body ?? '{}'), { phoneNumber: number, maxAge: 72 })
    assert.equal(checkCall?.authorization, 'Bearer carrier-token')
    assert.ok(seen.some((s) => s.path === '/sim-swap/v0/retrieve-date'))
  })

  for (const [name, reason] of [
    ['error', 'carrier error'],
    ['garbage', 'malformed answer'],
    ['hang', 'timeout'],
  ] as const) {
    test(`a carrier ${name === 'hang' ? 'that does not answer' : `answering ${name}`} blocks SMS factors with a clear reason`, async () => {
      behaviour = name
      const result = await check(server, bank.agentToken, number)
      assert.equal(result.status, 503)
      assert.equal(result.body.type, 'https://strongroom.dev/problems/risk/sim-swap-unavailable')
      assert.equal(result.body.detail, reason)
    })
  }
})
