import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { loadConfig } from '../platform/config.ts'
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

// Issue 15: CAMARA APIs are called with an access token from the operator's own OAuth 2.0 token endpoint, not a
// static bearer token.
describe('SIM-swap checks with the operator’s OAuth: client credentials, cached, renewed, failing closed', () => {
  let operator: Server
  let tokenEndpoint: 'ok' | 'down' | 'refuse' = 'ok'
  let expiresIn = 3600
  const issued: string[] = []
  const tokenRequests: { authorization: string | undefined; body: URLSearchParams }[] = []
  const apiCalls: string[] = []
  let revoked = new Set<string>()
  let server: TestServer
  let bank: TestBank
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sr-carrier-'))
  const secretFile = path.join(dir, 'client-secret')

  before(async () => {
    writeFileSync(secretFile, 'operator-client-secret\n', { mode: 0o600 })
    operator = createServer((request, response) => {
      let body = ''
      request.on('data', (chunk) => {
        body += chunk
      })
      request.on('end', () => {
        if (request.url === '/oauth2/token') {
          tokenRequests.push({ authorization: request.headers.authorization, body: new URLSearchParams(body) })
          if (tokenEndpoint === 'down') return void response.writeHead(503).end()
          if (tokenEndpoint === 'refuse') {
            response.writeHead(401, { 'content-type': 'application/json' })
            return void response.end('{"error":"invalid_client"}')
          }
          const token = `operator-token-${issued.length + 1}`
          issued.push(token)
          response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
          return void response.end(JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: expiresIn }))
        }
        const token = request.headers.authorization?.replace(/^Bearer /, '') ?? ''
        apiCalls.push(token)
        if (!issued.includes(token) || revoked.has(token)) return void response.writeHead(401).end()
        response.writeHead(200, { 'content-type': 'application/json' })
        response.end(request.url?.endsWith('/check') ? '{"swapped": false}' : '{"latestSimChange": null}')
      })
    })
    await new Promise<void>((resolve) => operator.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(operator.address() as AddressInfo).port}`
    server = await startTestServer({
      simSwapUrl: `${base}/sim-swap/v0`,
      simSwapTokenUrl: `${base}/oauth2/token`,
      simSwapClientId: 'strongroom-bank',
      simSwapClientSecretFile: secretFile,
      simSwapScope: 'sim-swap:check sim-swap:retrieve-date',
    })
    bank = await createTestBank(server)
  })
  after(async () => {
    await server.stop()
    operator.closeAllConnections()
    operator.close()
  })

  test('one token from the token endpoint (client_secret_basic, the scopes) serves every call until it is refused', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await check(server, bank.agentToken, number)).status, 200)
    assert.equal(tokenRequests.length, 1)
    const [request] = tokenRequests
    assert.equal(request?.body.get('grant_type'), 'client_credentials')
    assert.equal(request?.body.get('scope'), 'sim-swap:check sim-swap:retrieve-date')
    // RFC 6749 §2.3.1: id and secret form-urlencoded, then joined and base64-encoded.
    const basic = Buffer.from(request?.authorization?.replace(/^Basic /, '') ?? '', 'base64').toString()
    assert.deepEqual(basic.split(':').map(decodeURIComponent), ['strongroom-bank', 'operator-client-secret'])
    assert.ok(apiCalls.length >= 6 && apiCalls.every((token) => token === 'operator-token-1'))

    // The operator revokes the token: the next call gets a fresh one and goes through.
    revoked = new Set(['operator-token-1'])
    assert.equal((await check(server, bank.agentToken, number)).status, 200)
    assert.equal(tokenRequests.length, 2)
    assert.equal(apiCalls.at(-1), 'operator-token-2')
  })

  test('a token about to expire is renewed before it is used', async () => {
    expiresIn = 20 // shorter than the 30 s renewal margin: every call fetches a new one
    revoked = new Set(issued)
    assert.equal((await check(server, bank.agentToken, number)).status, 200)
    const before = tokenRequests.length
    assert.equal((await check(server, bank.agentToken, number)).status, 200)
    assert.ok(tokenRequests.length > before)
    expiresIn = 3600
  })

  for (const [behaviour, what] of [
    ['down', 'a token endpoint that is down'],
    ['refuse', 'a token endpoint refusing the client'],
  ] as const) {
    test(`${what}: SMS factors are blocked, saying the carrier authorization failed`, async () => {
      revoked = new Set(issued)
      tokenEndpoint = behaviour
      const result = await check(server, bank.agentToken, number)
      tokenEndpoint = 'ok'
      assert.equal(result.status, 503)
      assert.equal(result.body.type, 'https://strongroom.dev/problems/risk/sim-swap-unavailable')
      assert.equal(result.body.detail, 'carrier authorization failed')
      assert.ok(!JSON.stringify(result.body).includes('operator-client-secret'))
    })
  }

  test('the configuration needs the client and its secret file, and https in production', () => {
    assert.throws(
      () => loadConfig({ STRONGROOM_SIM_SWAP_TOKEN_URL: 'https://operator.example/token' }),
      /STRONGROOM_SIM_SWAP_TOKEN_URL needs STRONGROOM_SIM_SWAP_CLIENT_ID and STRONGROOM_SIM_SWAP_CLIENT_SECRET_FILE/,
    )
    const withClient = {
      STRONGROOM_SIM_SWAP_TOKEN_URL: 'http://operator.example/token',
      STRONGROOM_SIM_SWAP_CLIENT_ID: 'c',
      STRONGROOM_SIM_SWAP_CLIENT_SECRET_FILE: secretFile,
    }
    assert.throws(
      () => loadConfig({ ...withClient, STRONGROOM_SIM_SWAP_TOKEN: 'static' }),
      /STRONGROOM_SIM_SWAP_TOKEN and STRONGROOM_SIM_SWAP_TOKEN_URL are exclusive/,
    )
    assert.throws(
      () => loadConfig({ ...withClient, STRONGROOM_MODE: 'production', DATABASE_URL: 'postgres://x/y' }),
      /STRONGROOM_SIM_SWAP_TOKEN_URL must be an https:\/\/ URL in production mode/,
    )
  })
})
