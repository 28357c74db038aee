import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type Server, type ServerResponse } from 'node:http'
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

// Issue 15: operators that require CAMARA's CIBA flow: a token per phone number, from a backchannel authentication
// request naming it and polling the token endpoint with the CIBA grant.
describe('SIM-swap checks with the operator’s CIBA flow: a token per number, polled, cached, failing closed', () => {
  const other = '+447700900456'
  let operator: Server
  let server: TestServer
  let bank: TestBank
  let decision: 'grant' | 'deny' | 'down' = 'grant'
  const requests: { path: string; authorization: string | undefined; body: URLSearchParams }[] = []
  /** auth_req_id → the number it names and how often it was polled. */
  const pending = new Map<string, { phoneNumber: string; polls: number }>()
  /** Token → the number it was granted for. */
  const granted = new Map<string, string>()
  let revoked = new Set<string>()
  const apiCalls: { token: string; phoneNumber: string }[] = []
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sr-ciba-'))
  const secretFile = path.join(dir, 'client-secret')
  const basicOf = (authorization: string | undefined) =>
    Buffer.from(authorization?.replace(/^Basic /, '') ?? '', 'base64')
      .toString()
      .split(':')
      .map(decodeURIComponent)
  const json = (response: ServerResponse, status: number, body: unknown) =>
    response
      .writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      .end(JSON.stringify(body))

  before(async () => {
    writeFileSync(secretFile, 'ciba-client-secret\n', { mode: 0o600 })
    operator = createServer((request, response) => {
      let body = ''
      request.on('data', (chunk) => {
        body += chunk
      })
      request.on('end', () => {
        const form = new URLSearchParams(body)
        const url = request.url ?? ''
        if (url === '/bc-authorize' || url === '/oauth2/token') {
          requests.push({ path: url, authorization: request.headers.authorization, body: form })
          const [id, secret] = basicOf(request.headers.authorization)
          if (id !== 'strongroom-bank' || secret !== 'ciba-client-secret')
            return json(response, 401, { error: 'invalid_client' })
        }
        if (url === '/bc-authorize') {
          if (decision === 'down') return void response.writeHead(503).end()
          const phoneNumber = /^tel:(\+\d+)$/.exec(form.get('login_hint') ?? '')?.[1]
          if (!phoneNumber || form.get('scope') !== 'openid dpv:FraudPreventionAndDetection#sim-swap') {
            return json(response, 400, { error: 'invalid_request' })
          }
          const authReqId = `req-${requests.length}`
          pending.set(authReqId, { phoneNumber, polls: 0 })
          return json(response, 200, { auth_req_id: authReqId, expires_in: 120, interval: 1 })
        }
        if (url === '/oauth2/token') {
          const started = pending.get(form.get('auth_req_id') ?? '')
          if (form.get('grant_type') !== 'urn:openid:params:grant-type:ciba' || !started) {
            return json(response, 400, { error: 'invalid_grant' })
          }
          if (decision === 'deny') return json(response, 400, { error: 'access_denied' })
          // Pending once, as an operator consulting its subscriber records is; then granted, once.
          if (started.polls++ === 0) return json(response, 400, { error: 'authorization_pending' })
          pending.delete(form.get('auth_req_id') as string)
          const token = `ciba-token-${granted.size + 1}`
          granted.set(token, started.phoneNumber)
          return json(response, 200, { access_token: token, token_type: 'Bearer', expires_in: 3600 })
        }
        const token = request.headers.authorization?.replace(/^Bearer /, '') ?? ''
        const phoneNumber = JSON.parse(body).phoneNumber as string
        apiCalls.push({ token, phoneNumber })
        // A CIBA token speaks for its own number only.
        if (granted.get(token) !== phoneNumber || revoked.has(token)) return void response.writeHead(401).end()
        json(response, 200, url.endsWith('/check') ? { swapped: false } : { latestSimChange: null })
      })
    })
    await new Promise<void>((resolve) => operator.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(operator.address() as AddressInfo).port}`
    server = await startTestServer({
      simSwapUrl: `${base}/sim-swap/v0`,
      simSwapTokenUrl: `${base}/oauth2/token`,
      simSwapBcAuthorizeUrl: `${base}/bc-authorize`,
      simSwapClientId: 'strongroom-bank',
      simSwapClientSecretFile: secretFile,
      simSwapScope: 'openid dpv:FraudPreventionAndDetection#sim-swap',
    })
    bank = await createTestBank(server)
  })
  after(async () => {
    await server.stop()
    operator.closeAllConnections()
    operator.close()
  })

  test('bc-authorize names the number, the token endpoint is polled with the CIBA grant, the token serves its number', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await check(server, bank.agentToken, number)).status, 200)
    const authorizations = requests.filter((r) => r.path === '/bc-authorize')
    assert.equal(authorizations.length, 1, 'one CIBA request for the number, its token cached')
    assert.equal(authorizations[0]?.body.get('login_hint'), `tel:${number}`)
    const polls = requests.filter((r) => r.path === '/oauth2/token')
    assert.equal(polls.length, 2, 'pending once, then granted')
    for (const poll of polls) {
      assert.equal(poll.body.get('grant_type'), 'urn:openid:params:grant-type:ciba')
      assert.equal(poll.body.get('auth_req_id'), 'req-1')
    }
    assert.ok(apiCalls.length === 4 && apiCalls.every((c) => c.token === 'ciba-token-1' && c.phoneNumber === number))

    // Another number gets a token of its own, never the first one's.
    assert.equal((await check(server, bank.agentToken, other)).status, 200)
    const second = requests.filter((r) => r.path === '/bc-authorize')
    assert.equal(second.at(-1)?.body.get('login_hint'), `tel:${other}`)
    assert.ok(apiCalls.filter((c) => c.phoneNumber === other).every((c) => c.token === 'ciba-token-2'))

    // The operator revokes the first number's token: the next check runs CIBA again.
    revoked = new Set(['ciba-token-1'])
    assert.equal((await check(server, bank.agentToken, number)).status, 200)
    assert.equal(apiCalls.at(-1)?.token, 'ciba-token-3')
  })

  for (const [behaviour, what] of [
    ['deny', 'an operator denying the CIBA request'],
    ['down', 'a backchannel endpoint that is down'],
  ] as const) {
    test(`${what}: SMS factors are blocked, saying the carrier authorization failed`, async () => {
      revoked = new Set(granted.keys())
      decision = behaviour
      const result = await check(server, bank.agentToken, number)
      decision = 'grant'
      assert.equal(result.status, 503)
      assert.equal(result.body.detail, 'carrier authorization failed')
      assert.ok(!JSON.stringify(result.body).includes('ciba-client-secret'))
    })
  }

  test('the CIBA endpoint needs the token endpoint, and https in production', () => {
    assert.throws(
      () => loadConfig({ STRONGROOM_SIM_SWAP_BC_AUTHORIZE_URL: 'https://operator.example/bc-authorize' }),
      /STRONGROOM_SIM_SWAP_BC_AUTHORIZE_URL needs STRONGROOM_SIM_SWAP_TOKEN_URL/,
    )
    assert.throws(
      () =>
        loadConfig({
          STRONGROOM_SIM_SWAP_TOKEN_URL: 'https://operator.example/token',
          STRONGROOM_SIM_SWAP_BC_AUTHORIZE_URL: 'http://operator.example/bc-authorize',
          STRONGROOM_SIM_SWAP_CLIENT_ID: 'c',
          STRONGROOM_SIM_SWAP_CLIENT_SECRET_FILE: secretFile,
          STRONGROOM_MODE: 'production',
          DATABASE_URL: 'postgres://x/y',
        }),
      /STRONGROOM_SIM_SWAP_BC_AUTHORIZE_URL must be an https:\/\/ URL in production mode/,
    )
  })
})
