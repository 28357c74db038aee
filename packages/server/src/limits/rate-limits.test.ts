import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, beforeEach, describe, test } from 'node:test'
import { createDpopProof, enrolDevice, generateDeviceKeys } from '@strongroom/sdk'
import * as OTPAuth from 'otpauth'
import WebSocket from 'ws'
import { PROBLEM_BASE } from '../platform/http/problems.ts'
import { eventually } from '../testing/eventually.ts'
import { createTestBank, startTwoNodes, type TestBank, type TestServer } from '../testing/harness.ts'
import { DEFAULT_RATE_LIMIT_POLICY } from './policy.ts'

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Record<string, unknown>,
  }
}

function assertRateLimited(response: Awaited<ReturnType<typeof post>>) {
  assert.equal(response.status, 429)
  assert.match(String(response.headers.get('content-type')), /^application\/problem\+json/)
  assert.equal(response.body.type, `${PROBLEM_BASE}request/rate-limited`)
  const retryAfter = Number(response.headers.get('retry-after'))
  assert.ok(
    retryAfter >= 1 && retryAfter <= DEFAULT_RATE_LIMIT_POLICY.failedAttempts.windowMinutes * 60,
    `${retryAfter}`,
  )
}

/**
 * Failed attempts are counted in fixed windows (15 minutes, from the epoch): a test that counts its tries up to a limit
 * waits out a window's last 30 s, when its tries would otherwise be split between two windows.
 */
async function awayFromWindowEdge() {
  const windowMs = DEFAULT_RATE_LIMIT_POLICY.failedAttempts.windowMinutes * 60_000
  const leftMs = windowMs - (Date.now() % windowMs)
  if (leftMs < 30_000) await new Promise((resolve) => setTimeout(resolve, leftMs + 100))
}

/** Tries `guess` against the two nodes in turn until one answers 429; returns how many tries that took. */
async function triesUntilRateLimited(
  nodes: TestServer[],
  guess: (node: TestServer, attempt: number) => Promise<Awaited<ReturnType<typeof post>>>,
) {
  for (let attempt = 1; attempt <= 1000; attempt++) {
    const node = nodes[attempt % nodes.length] as TestServer
    const response = await guess(node, attempt)
    if (response.status === 429) {
      assertRateLimited(response)
      return attempt
    }
    assert.ok(response.status >= 400 && response.status < 500, `a wrong guess is refused: ${response.status}`)
  }
  assert.fail('a thousand guesses went through without a 429')
}

describe('guessing is stopped on every node alike (issue 21, scope 3)', () => {
  let nodes: Awaited<ReturnType<typeof startTwoNodes>>
  let bank: TestBank
  before(async () => {
    nodes = await startTwoNodes({ trustProxy: true })
    bank = await createTestBank(nodes.a)
  })
  after(() => nodes.stop())
  beforeEach(awayFromWindowEdge)

  test('pivot tokens guessed from one client, alternating between two nodes: 429 at the limit, then on both', async () => {
    const limit = DEFAULT_RATE_LIMIT_POLICY.failedAttempts.perAddress['pivot-link']
    const client = { 'x-forwarded-for': '203.0.113.7' }
    const open = (node: TestServer) =>
      post(`${node.url}/v1/pivot/open`, { token: randomBytes(24).toString('base64url') }, client)
    const tries = await triesUntilRateLimited([nodes.a, nodes.b], open)
    assert.equal(tries, limit + 1)
    assertRateLimited(await open(nodes.a))
    assertRateLimited(await open(nodes.b))
    // Another client is not held back by this one.
    const other = await post(
      `${nodes.b.url}/v1/pivot/open`,
      { token: 'x'.repeat(32) },
      { 'x-forwarded-for': '198.51.100.2' },
    )
    assert.equal(other.status, 400)
    // The trip is audited once, for the link guesses, by IP.
    await nodes.a.flushAudit()
    const trips = await nodes.a.ctx.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'rate-limit.trip')
      .where('reason', '=', 'pivot-link')
      .execute()
    assert.equal(trips.length, 1)
    assert.equal(JSON.parse(trips[0]?.details ?? '{}').limitedBy, 'ip')
  })

  test('enrolment codes guessed from one client: 429 at the limit on both nodes', async () => {
    const limit = DEFAULT_RATE_LIMIT_POLICY.failedAttempts.perAddress['enrolment-code']
    const keys = await generateDeviceKeys()
    const client = { 'x-forwarded-for': '203.0.113.8' }
    const enrol = async (node: TestServer) =>
      post(
        `${node.url}/v1/devices`,
        { enrolmentCode: randomBytes(12).toString('base64url'), label: 'guess' },
        { ...client, dpop: await createDpopProof(keys, { htm: 'POST', htu: `${node.url}/v1/devices` }) },
      )
    assert.equal(await triesUntilRateLimited([nodes.a, nodes.b], enrol), limit + 1)
    assertRateLimited(await enrol(nodes.b))
  })

  test('enrolments that succeed are not guesses: only the failed ones count towards the limit', async () => {
    const limit = DEFAULT_RATE_LIMIT_POLICY.failedAttempts.perAddress['enrolment-code']
    const client = { 'x-forwarded-for': '203.0.113.9' }
    const enrol = async (node: TestServer, code: string) =>
      post(
        `${node.url}/v1/devices`,
        { enrolmentCode: code, label: 'branch' },
        {
          ...client,
          dpop: await createDpopProof(await generateDeviceKeys(), { htm: 'POST', htu: `${node.url}/v1/devices` }),
        },
      )
    const wrong = () => randomBytes(12).toString('base64url')
    for (let i = 0; i < limit - 1; i++) assert.equal((await enrol(i % 2 ? nodes.a : nodes.b, wrong())).status, 400)
    for (let i = 0; i < 5; i++) {
      const enrolled = await enrol(i % 2 ? nodes.a : nodes.b, await bank.enrolmentCode())
      assert.equal(enrolled.status, 201, JSON.stringify(enrolled.body))
      // Taken back before the answer left: the client's next try, sent now, finds only the failed ones counted.
      const counted = await nodes.a.ctx.db
        .selectFrom('rate_limit_counters')
        .select(({ fn }) => fn.sum<number>('hits').as('hits'))
        .where('key', '=', 'guesses:enrolment-code:ip:203.0.113.9')
        .executeTakeFirstOrThrow()
      assert.equal(Number(counted.hits), limit - 1)
    }
    assert.equal((await enrol(nodes.a, wrong())).status, 400)
    assertRateLimited(await enrol(nodes.b, wrong()))
  })

  test('OTP guesses by one device are stopped even when every guess comes from another address', async () => {
    const limit = DEFAULT_RATE_LIMIT_POLICY.failedAttempts.perDevice['one-time-code']
    // Every request of this phone comes from another address, as through a botnet or rotating proxies.
    let address = 0
    const rotatingAddresses: typeof fetch = (input, init) => {
      const headers = new Headers(init?.headers)
      headers.set('x-forwarded-for', `192.0.2.${(address++ % 250) + 1}`)
      return fetch(input, { ...init, headers })
    }
    const { client } = await enrolDevice({
      baseUrl: nodes.a.url,
      enrolmentCode: await bank.enrolmentCode(),
      label: 'phone',
      fetch: rotatingAddresses,
      WebSocket: WebSocket as never,
    })
    const { otpauthUri } = await client.enrolTotp()
    const totp = OTPAuth.URI.parse(otpauthUri) as OTPAuth.TOTP
    await client.confirmTotp(totp.generate())
    const right = totp.generate({ timestamp: Date.now() + 120_000 })
    let tries = 0
    for (;;) {
      tries++
      const wrong = String((Number(right) + tries) % 1_000_000).padStart(6, '0')
      const refused = await client.request('POST', '/v1/factors/totp/verify', { code: wrong }).catch((error) => error)
      assert.ok(refused instanceof Error)
      if ((refused as { status?: number }).status === 429) break
      assert.ok(tries <= limit, 'a wrong code is refused, and the limit stops the guessing')
    }
    assert.equal(tries, limit + 1)
    await nodes.a.flushAudit()
    const trip = await nodes.a.ctx.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'rate-limit.trip')
      .where('reason', '=', 'one-time-code')
      .executeTakeFirstOrThrow()
    assert.equal(JSON.parse(trip.details).limitedBy, 'device')
    assert.equal(trip.actor_kind, 'device')
  })
})

test('consent approvals, staff sign-ins and client assertions are limited the same way', async () => {
  const nodes = await startTwoNodes({ trustProxy: true })
  try {
    const bank = await createTestBank(nodes.a)
    await awayFromWindowEdge()
    const { failedAttempts } = DEFAULT_RATE_LIMIT_POLICY
    const client = { 'x-forwarded-for': '203.0.113.20' }
    const token = (node: TestServer) =>
      fetch(`${node.url}/v1/oauth/token`, {
        method: 'POST',
        headers: { ...client, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=x.y.z',
      }).then(async (response) => ({ status: response.status, headers: response.headers, body: await response.json() }))
    assert.equal(await triesUntilRateLimited([nodes.a, nodes.b], token), failedAttempts.perAddress['oauth-token'] + 1)
    const signIn = (node: TestServer) =>
      post(`${node.url}/v1/staff/passkey/sign-in`, { tenantId: bank.tenantId, assertion: {} }, client)
    assert.equal(
      await triesUntilRateLimited([nodes.a, nodes.b], signIn),
      failedAttempts.perAddress['staff-sign-in'] + 1,
    )
    const { client: phone } = await bank.enrol('phone', { baseUrl: nodes.b.url })
    let tries = 0
    for (let status = 0; status !== 429; tries++) {
      const refused = await phone.request('POST', '/v1/consents/cns_AAAAAAAAAAAAAAAAAAAAAA/approve', {}).catch((e) => e)
      status = (refused as { status: number }).status
      assert.ok(status >= 400 && status < 500)
    }
    assert.equal(tries, failedAttempts.perDevice['consent-approval'] + 1)
  } finally {
    await nodes.stop()
  }
})

describe('limits on every request: per tenant policy, per IP, per stream socket', () => {
  let nodes: Awaited<ReturnType<typeof startTwoNodes>>
  let bank: TestBank
  before(async () => {
    nodes = await startTwoNodes({ streamFramesPerSecond: 5 })
    bank = await createTestBank(nodes.a)
  })
  after(() => nodes.stop())

  test('a tenant lowers its per-device limit: the device gets 429 on both nodes; health checks are never limited', async () => {
    const admin = { authorization: `Bearer ${bank.adminToken}` }
    const policy = structuredClone(DEFAULT_RATE_LIMIT_POLICY)
    policy.requestsPerMinute.device = 3
    const put = await fetch(`${nodes.a.url}/v1/policies/rate-limits`, {
      method: 'PUT',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify(policy),
    })
    assert.equal(put.status, 200)
    const invalid = await fetch(`${nodes.a.url}/v1/policies/rate-limits`, {
      method: 'PUT',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ ...policy, requestsPerMinute: { device: 0 } }),
    })
    assert.equal(invalid.status, 400)
    const read = await fetch(`${nodes.b.url}/v1/policies/rate-limits`, { headers: admin })
    assert.deepEqual(await read.json(), policy)

    const { client } = await bank.enrol('phone', { baseUrl: nodes.a.url })
    // Within the node's policy cache time (five seconds), counted across nodes (synchronised every second).
    const status = () =>
      client.me().then(
        () => 200,
        (error: { status?: number }) => error.status,
      )
    await eventually(status, (answer) => answer === 429)
    for (let i = 0; i < 50; i++) assert.equal((await fetch(`${nodes.b.url}/healthz`)).status, 200)
  })

  test('a stream socket sending faster than its frames per second gets its extra frames refused', async () => {
    const problems: string[] = []
    const frames: string[] = []
    const socket = new WebSocket(`${nodes.a.url.replace('http', 'ws')}/v1/stream`)
    await new Promise((resolve) => socket.once('open', resolve))
    socket.on('message', (data) => {
      const frame = JSON.parse(String(data)) as { type: string; problem?: { type: string } }
      frames.push(frame.type)
      if (frame.type === 'error' && frame.problem) problems.push(frame.problem.type)
    })
    const admin = await bank.staffToken('admin')
    socket.send(JSON.stringify({ type: 'auth', authorization: `Bearer ${admin.token}` }))
    await eventually(
      () => frames.length,
      (received) => received > 0,
    )
    assert.equal(problems.length, 0)
    for (let i = 0; i < 30; i++) socket.send(JSON.stringify({ type: 'ping', ref: `r${i}` }))
    await eventually(
      () => problems,
      (received) => received.includes(`${PROBLEM_BASE}request/rate-limited`),
    )
    socket.close()
  })
})

describe('the limit per IP address', () => {
  let nodes: Awaited<ReturnType<typeof startTwoNodes>>
  before(async () => {
    nodes = await startTwoNodes({ rateLimitIpPerMinute: 40 })
  })
  after(() => nodes.stop())

  test('one address over STRONGROOM_RATE_LIMIT_IP_PER_MINUTE gets 429 with Retry-After, before authentication', async () => {
    let last: Response | undefined
    for (let i = 0; i < 200 && last?.status !== 429; i++) {
      last = await fetch(`${(i % 2 === 0 ? nodes.a : nodes.b).url}/v1/me`, {
        headers: { authorization: 'Bearer srs_x' },
      })
    }
    assert.equal(last?.status, 429)
    assert.match(String(last?.headers.get('content-type')), /^application\/problem\+json/)
    assert.ok(Number(last?.headers.get('retry-after')) >= 1)
    const metrics = await nodes.a.ctx.metrics.registry.getSingleMetricAsString('strongroom_rate_limited_total')
    assert.match(
      metrics + (await nodes.b.ctx.metrics.registry.getSingleMetricAsString('strongroom_rate_limited_total')),
      /limit="requests",key="ip"/,
    )
  })
})
