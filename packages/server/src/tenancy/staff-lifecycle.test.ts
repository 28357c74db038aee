import assert from 'node:assert/strict'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import WebSocket from 'ws'
import { cliHarness } from '../testing/cli.ts'
import {
  createTestBank,
  createTestDatabase,
  startTestServer,
  type TestBank,
  type TestServer,
} from '../testing/harness.ts'
import { needsPostgresAndNats } from '../testing/requirements.ts'
import { staffStream } from '../testing/staff-stream.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'

async function call(server: TestServer, token: string, method: string, path: string, body?: unknown) {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.text()
  return { status: response.status, body: text ? JSON.parse(text) : undefined }
}

const problemType = (frames: Record<string, unknown>[]) =>
  frames.map((f) => (f.problem as { type?: string } | undefined)?.type).find(Boolean)

async function issue(server: TestServer, bank: TestBank, staffId: string, body: unknown = {}) {
  return call(server, bank.adminToken, 'POST', `/v1/staff/${staffId}/tokens`, body)
}

describe('staff revocation, deactivation and token lifetimes', () => {
  let server: TestServer
  let bank: TestBank

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
  })
  after(() => server.stop())

  test('one revoked token is refused and its stream closed; the member’s other tokens go on', async () => {
    const agent = await bank.staffToken('agent')
    const second = (await issue(server, bank, agent.staffId)).body as { token: string; tokenId: string }
    const first = await staffStream(server, agent.token)
    const other = await staffStream(server, second.token)
    const firstTokenId = (
      await server.ctx.db
        .selectFrom('staff_tokens')
        .select('id')
        .where('staff_id', '=', agent.staffId)
        .where('id', '!=', second.tokenId)
        .executeTakeFirstOrThrow()
    ).id

    const revoked = await call(
      server,
      bank.adminToken,
      'POST',
      `/v1/staff/${agent.staffId}/tokens/${firstTokenId}/revoke`,
    )
    assert.equal(revoked.status, 204)
    assert.equal((await first.closed).code, 4001)
    assert.equal(problemType(first.frames), `${PROBLEMS}auth/invalid-token`)
    assert.equal((await call(server, agent.token, 'GET', '/v1/me')).status, 401)
    assert.equal((await call(server, second.token, 'GET', '/v1/me')).status, 200)
    assert.equal(other.socket.readyState, WebSocket.OPEN)
    other.socket.close()

    // Again: nothing changes. Another member's path, an unknown token: not found. An agent may not revoke.
    const again = `/v1/staff/${agent.staffId}/tokens/${firstTokenId}/revoke`
    assert.equal((await call(server, bank.adminToken, 'POST', again)).status, 204)
    const elsewhere = `/v1/staff/${bank.agentId}/tokens/${second.tokenId}/revoke`
    assert.equal((await call(server, bank.adminToken, 'POST', elsewhere)).status, 404)
    const unknown = `/v1/staff/${agent.staffId}/tokens/stk_${'x'.repeat(22)}/revoke`
    assert.equal((await call(server, bank.adminToken, 'POST', unknown)).body?.type, `${PROBLEMS}request/not-found`)
    const byAgent = `/v1/staff/${agent.staffId}/tokens/${second.tokenId}/revoke`
    assert.equal((await call(server, bank.agentToken, 'POST', byAgent)).status, 403)
    assert.equal((await call(server, second.token, 'GET', '/v1/me')).status, 200)

    await server.flushAudit()
    const audit = await server.ctx.db
      .selectFrom('audit_events')
      .select(['action', 'details'])
      .where('action', '=', 'staff.token.revoke')
      .where('target_id', '=', agent.staffId)
      .execute()
    assert.equal(audit.length, 1)
  })

  test('a deactivated member loses every token and stream and gets no new one until made active again', async () => {
    const agent = await bank.staffToken('agent')
    const second = (await issue(server, bank, agent.staffId)).body as { token: string }
    const streams = [await staffStream(server, agent.token), await staffStream(server, second.token)]

    const deactivated = await call(server, bank.adminToken, 'POST', `/v1/staff/${agent.staffId}/deactivate`)
    assert.equal(deactivated.status, 200)
    assert.equal(deactivated.body.active, false)
    for (const stream of streams) assert.equal((await stream.closed).code, 4001)
    for (const token of [agent.token, second.token]) {
      assert.equal((await call(server, token, 'GET', '/v1/me')).status, 401)
    }
    const refused = await issue(server, bank, agent.staffId)
    assert.equal(refused.status, 403)
    assert.equal(refused.body.detail, 'this staff member is deactivated')
    const listed = await call(server, bank.adminToken, 'GET', '/v1/staff')
    assert.equal(listed.body.staff.find((s: { id: string }) => s.id === agent.staffId).active, false)

    const activated = await call(server, bank.adminToken, 'POST', `/v1/staff/${agent.staffId}/activate`)
    assert.equal(activated.body.active, true)
    // The old tokens stay revoked; a new one works.
    assert.equal((await call(server, agent.token, 'GET', '/v1/me')).status, 401)
    const fresh = (await issue(server, bank, agent.staffId)).body as { token: string }
    assert.equal((await call(server, fresh.token, 'GET', '/v1/me')).status, 200)
    assert.equal((await call(server, bank.agentToken, 'POST', `/v1/staff/${agent.staffId}/deactivate`)).status, 403)
    const nobody = `/v1/staff/stf_${'x'.repeat(22)}/deactivate`
    assert.equal((await call(server, bank.adminToken, 'POST', nobody)).status, 404)
  })

  test("the bank's last active admin cannot be deactivated by staff; of two admins deactivating each other, one is", async () => {
    const own = await createTestBank(server, 'Bank With One Admin')
    const me = await call(server, own.adminToken, 'GET', '/v1/me')
    const alone = await call(server, own.adminToken, 'POST', `/v1/staff/${me.body.staffId}/deactivate`)
    assert.equal(alone.status, 409)
    assert.equal(alone.body.type, `${PROBLEMS}tenancy/last-admin`)
    assert.equal((await call(server, own.adminToken, 'GET', '/v1/me')).status, 200, 'nothing changed')

    // With a second admin, either may go, but not both: the two deactivations at once leave one admin.
    const second = await own.staffToken('admin')
    const [first, other] = await Promise.all([
      call(server, own.adminToken, 'POST', `/v1/staff/${second.staffId}/deactivate`),
      call(server, second.token, 'POST', `/v1/staff/${me.body.staffId}/deactivate`),
    ])
    // The other is refused: as the last admin (409), or, when the first deactivation ended its token before its
    // request was signed in, as no longer signed in (401).
    const [won, lost] = [first.status, other.status].sort()
    assert.equal(won, 200)
    assert.ok(lost === 409 || lost === 401, `the other answered ${lost}`)
    const stillAdmin = first.status === 200 ? own.adminToken : second.token
    assert.equal((await call(server, stillAdmin, 'GET', '/v1/me')).status, 200)
  })

  test('the tenant policy caps staff token lifetimes; a policy out of range is refused', async () => {
    assert.deepEqual((await call(server, bank.adminToken, 'GET', '/v1/policies/staff-tokens')).body, {
      maxTokenSeconds: 90 * 86400,
    })
    for (const bad of [{ maxTokenSeconds: 59 }, { maxTokenSeconds: 91 * 86400 }, { maxTokenSeconds: 3600, x: 1 }]) {
      const refused = await call(server, bank.adminToken, 'PUT', '/v1/policies/staff-tokens', bad)
      assert.equal(refused.status, 400)
    }
    assert.equal(
      (await call(server, bank.agentToken, 'PUT', '/v1/policies/staff-tokens', { maxTokenSeconds: 60 })).status,
      403,
    )
    const saved = await call(server, bank.adminToken, 'PUT', '/v1/policies/staff-tokens', { maxTokenSeconds: 3600 })
    assert.deepEqual(saved.body, { maxTokenSeconds: 3600 })

    const before = Date.now()
    const issued = await issue(server, bank, bank.agentId, { ttlSeconds: 7 * 86400 })
    assert.equal(issued.status, 201)
    const lifetime = Date.parse(issued.body.expiresAt) - before
    assert.ok(lifetime <= 3600_000 + 1000 && lifetime > 3500_000, `lifetime ${lifetime} ms`)
    const short = await issue(server, bank, bank.agentId, { ttlSeconds: 600 })
    assert.ok(Date.parse(short.body.expiresAt) - before <= 601_000)
    await call(server, bank.adminToken, 'PUT', '/v1/policies/staff-tokens', { maxTokenSeconds: 90 * 86400 })
  })
})

describe('a staff deactivation on one node ends their streams and tokens on every other', {
  skip: needsPostgresAndNats(),
}, () => {
  test('deactivated through node A, the member’s stream on node B closes and their token answers 401 on both', async () => {
    const database = await createTestDatabase()
    // Heartbeats far apart and an hour-long token: only the bus can close the stream.
    const a = await startTestServer({ streamHeartbeatMs: 300_000 }, database)
    const b = await startTestServer(
      {
        keyFile: a.config.keyFile,
        archiveKeyFile: a.config.archiveKeyFile,
        archiveMember: false,
        streamHeartbeatMs: 300_000,
      },
      database,
    )
    try {
      const bank = await createTestBank(a)
      const supervisor = await bank.staffToken('supervisor')
      const onB = await staffStream(b, supervisor.token)
      const onA = await staffStream(a, supervisor.token)
      const started = performance.now()
      const deactivated = await call(a, bank.adminToken, 'POST', `/v1/staff/${supervisor.staffId}/deactivate`)
      assert.equal(deactivated.status, 200)
      assert.equal((await onB.closed).code, 4001)
      const elapsed = performance.now() - started
      assert.equal((await onA.closed).code, 4001)
      assert.equal(problemType(onB.frames), `${PROBLEMS}auth/invalid-token`)
      for (const node of [a, b]) assert.equal((await call(node, supervisor.token, 'GET', '/v1/me')).status, 401)
      console.log(`stream on the other node closed ${elapsed.toFixed(0)} ms after the deactivation was asked for`)
    } finally {
      await b.stop()
      await a.stop()
      await database.drop()
    }
  })
})

describe('the staff commands reach the running nodes', { skip: needsPostgresAndNats() }, () => {
  const cli = cliHarness()

  test('`staff revoke-token` and `staff deactivate` end tokens and close streams on a running server', async () => {
    const server = await startTestServer({ keyFile: path.join(cli.dir, 'keyring.json') }, cli.database)
    try {
      const bank = await createTestBank(server)
      const agent = await bank.staffToken('agent', 'alice')
      const second = (await issue(server, bank, agent.staffId)).body as { token: string; tokenId: string }
      const stream = await staffStream(server, second.token)
      const nats = { NATS_URL: process.env.NATS_URL }

      const revoked = cli.run(['staff', 'revoke-token', '--tenant', bank.tenantId, '--token', second.tokenId], nats)
      assert.equal(revoked.status, 0, revoked.stderr)
      assert.equal((await stream.closed).code, 4001)
      assert.equal((await call(server, second.token, 'GET', '/v1/me')).status, 401)
      assert.equal((await call(server, agent.token, 'GET', '/v1/me')).status, 200)

      const missing = cli.run(['staff', 'deactivate', '--tenant', bank.tenantId, '--name', 'nobody'], nats)
      assert.equal(missing.status, 2)
      assert.match(missing.stderr, /no staff member nobody/)
      const deactivated = cli.run(['staff', 'deactivate', '--tenant', bank.tenantId, '--name', 'alice'], nats)
      assert.equal(deactivated.status, 0, deactivated.stderr)
      assert.equal(JSON.parse(deactivated.stdout).active, false)
      assert.equal((await call(server, agent.token, 'GET', '/v1/me')).status, 401)
    } finally {
      await server.stop()
    }
  })
})
