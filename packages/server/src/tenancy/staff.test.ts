import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { canTakeConversations } from './staff.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'

describe('staff and their tokens', () => {
  let server: TestServer
  let bank: TestBank

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
  })
  after(() => server.stop())

  async function call(method: string, path: string, token: string, body?: unknown) {
    const response = await fetch(server.url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : null,
    })
    return { status: response.status, headers: response.headers, body: await response.json() }
  }

  test('an admin adds a staff member and issues a token, shown once, that works at once', async () => {
    const created = await call('POST', '/v1/staff', bank.adminToken, { name: 'bob', role: 'supervisor' })
    assert.equal(created.status, 201)
    assert.equal(created.body.role, 'supervisor')
    const issued = await call('POST', `/v1/staff/${created.body.id}/tokens`, bank.adminToken, { ttlSeconds: 600 })
    assert.equal(issued.status, 201)
    assert.equal(issued.headers.get('cache-control'), 'no-store')
    assert.match(issued.body.token, /^srs_[A-Za-z0-9_-]{43}$/)
    assert.ok(issued.body.scopes.includes('conversations:all'))
    const expiresIn = Date.parse(issued.body.expiresAt) - Date.now()
    assert.ok(expiresIn > 590_000 && expiresIn <= 600_000)
    const me = await call('GET', '/v1/me', issued.body.token)
    assert.deepEqual([me.body.staffId, me.body.role], [created.body.id, 'supervisor'])
    const stored = await server.ctx.db.selectFrom('staff_tokens').select('token_hash').execute()
    for (const row of stored) assert.ok(!Buffer.from(row.token_hash).toString().includes(issued.body.token))
  })

  test('a token can be narrowed to some scopes, never widened past the role', async () => {
    const created = await call('POST', '/v1/staff', bank.adminToken, { name: 'carol', role: 'agent' })
    const narrow = await call('POST', `/v1/staff/${created.body.id}/tokens`, bank.adminToken, {
      scopes: ['conversations:read'],
    })
    assert.deepEqual(narrow.body.scopes, ['conversations:read'])
    const refused = await call('POST', '/v1/conversations', narrow.body.token, { customerId: bank.customerId })
    assert.equal(refused.status, 403)
    const wide = await call('POST', `/v1/staff/${created.body.id}/tokens`, bank.adminToken, { scopes: ['staff:admin'] })
    assert.equal(wide.status, 403)
    assert.equal(wide.body.detail, 'the agent role cannot hold staff:admin')
  })

  test('only admins manage staff; names are unique per tenant; bad input is refused', async () => {
    const byAgent = await call('POST', '/v1/staff', bank.agentToken, { name: 'mallory', role: 'admin' })
    assert.equal(byAgent.status, 403)
    assert.equal(byAgent.body.type, `${PROBLEMS}auth/forbidden`)
    const duplicate = await call('POST', '/v1/staff', bank.adminToken, { name: 'agent', role: 'agent' })
    assert.equal(duplicate.status, 409)
    const badRole = await call('POST', '/v1/staff', bank.adminToken, { name: 'x', role: 'root' })
    assert.equal(badRole.status, 400)
    const tooLong = await call('POST', `/v1/staff/${bank.agentId}/tokens`, bank.adminToken, { ttlSeconds: 10 ** 9 })
    assert.equal(tooLong.status, 400)
    const other = await createTestBank(server, 'Other Bank')
    const foreign = await call('POST', `/v1/staff/${bank.agentId}/tokens`, other.adminToken, {})
    assert.equal(foreign.status, 404)
  })

  test('whether a member can take conversations says why not, as the assignment refusing them does', async () => {
    const compliance = await bank.staffToken('compliance', 'cleo')
    const leaver = await bank.staffToken('agent', 'lee')
    assert.equal((await call('POST', `/v1/staff/${leaver.staffId}/deactivate`, bank.adminToken)).status, 200)
    const conversation = await call('POST', '/v1/conversations', bank.adminToken, { customerId: bank.customerId })
    const unknown = `stf_${'x'.repeat(22)}`
    const cases = [
      [bank.agentId, undefined],
      [compliance.staffId, [400, 'a staff member with the compliance role cannot answer conversations']],
      [leaver.staffId, [400, 'lee is deactivated and cannot take conversations']],
      [unknown, [404, 'no such staff member']],
    ] as const
    for (const [staffId, refusal] of cases) {
      const fitness = await canTakeConversations(server.ctx, bank.tenantId, staffId)
      const assigned = await call('PUT', `/v1/conversations/${conversation.body.id}/assignment`, bank.adminToken, {
        staffId,
        mode: 'reassign',
      })
      if (refusal === undefined) {
        assert.deepEqual([fitness.fit, fitness.fit && fitness.staff.id, assigned.status], [true, staffId, 200])
        continue
      }
      assert.deepEqual(fitness, {
        fit: false,
        problem: refusal[0] === 404 ? 'request/not-found' : 'request/invalid',
        reason: refusal[1],
      })
      assert.deepEqual([assigned.status, assigned.body.detail], refusal)
    }
  })

  test('a compliance officer sees whom they review by name (customers:export), and registers no one', async () => {
    const compliance = await bank.staffToken('compliance')
    const read = await call('GET', `/v1/customers/${bank.customerId}`, compliance.token)
    assert.deepEqual([read.status, read.body.displayName], [200, 'Ada Customer'])
    const register = await call('POST', '/v1/customers', compliance.token, { externalRef: 'C-9', displayName: 'Eve' })
    assert.deepEqual([register.status, register.body.detail], [403, 'this needs the customers:write scope'])
    // A token narrowed to the archive holds neither scope: refused, naming both.
    const narrowed = await call('POST', `/v1/staff/${compliance.staffId}/tokens`, bank.adminToken, {
      scopes: ['archive:read'],
    })
    const refused = await call('GET', `/v1/customers/${bank.customerId}`, narrowed.body.token)
    assert.deepEqual(
      [refused.status, refused.body.detail],
      [403, 'this needs the customers:write or customers:export scope'],
    )
  })

  test('customers: the bank reference is unique per tenant and stored only encrypted', async () => {
    const first = await call('POST', '/v1/customers', bank.agentToken, { externalRef: 'CUST-42', displayName: 'Zoe' })
    assert.equal(first.status, 201)
    const again = await call('POST', '/v1/customers', bank.agentToken, { externalRef: 'CUST-42', displayName: 'Z' })
    assert.equal(again.status, 409)
    assert.equal(again.body.type, `${PROBLEMS}customers/duplicate-reference`)
    const other = await createTestBank(server, 'Third Bank')
    const elsewhere = await call('POST', '/v1/customers', other.agentToken, {
      externalRef: 'CUST-42',
      displayName: 'Z',
    })
    assert.equal(elsewhere.status, 201)
    const row = await server.ctx.db
      .selectFrom('customers')
      .selectAll()
      .where('id', '=', first.body.id)
      .executeTakeFirstOrThrow()
    for (const column of [row.external_ref, row.display_name, row.external_ref_index]) {
      const bytes = Buffer.from(column)
      assert.ok(!bytes.includes('CUST-42') && !bytes.includes('Zoe'))
    }
    assert.equal((await call('GET', `/v1/customers/${first.body.id}`, bank.agentToken)).body.displayName, 'Zoe')
  })
})
