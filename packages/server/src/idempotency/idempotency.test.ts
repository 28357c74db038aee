import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { StaffToken, StrongroomClient } from '@strongroom/sdk'
import { PROBLEM_BASE } from '../platform/http/problems.ts'
import { createTestBank, startTwoNodes, type TestBank } from '../testing/harness.ts'

/**
 * Idempotency keys (issue 21): a client that timed out on one node and sent the same create to another gets the
 * first response again, never a second record; two nodes on one database agree because the key is claimed in the
 * create's own transaction.
 */
describe('Idempotency-Key on creates, across two nodes', () => {
  let nodes: Awaited<ReturnType<typeof startTwoNodes>>
  let bank: TestBank

  before(async () => {
    nodes = await startTwoNodes()
    bank = await createTestBank(nodes.a)
  })
  after(() => nodes.stop())

  const post = async (baseUrl: string, path: string, body: unknown, key?: string) => {
    const response = await fetch(baseUrl + path, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${bank.adminToken}`,
        'content-type': 'application/json',
        ...(key === undefined ? {} : { 'idempotency-key': key }),
      },
      body: JSON.stringify(body),
    })
    return {
      status: response.status,
      contentType: response.headers.get('content-type'),
      replayed: response.headers.get('idempotency-replayed'),
      body: (await response.json()) as Record<string, unknown>,
    }
  }
  const count = async (table: 'customers' | 'conversations' | 'consents' | 'staff') => {
    const row = await nodes.a.ctx.db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('tenant_id', '=', bank.tenantId)
      .executeTakeFirstOrThrow()
    return Number(row.n)
  }

  test('T285: the same createCustomer sent to one node and then another makes one customer, answered twice alike', async () => {
    const before = await count('customers')
    const body = { externalRef: 'IDEM-1', displayName: 'Grace Idempotent' }
    const first = await post(nodes.a.url, '/v1/customers', body, '"5b0d6c6e-3d1f-4c43-9f55-3c1c2b7e0a01"')
    const second = await post(nodes.b.url, '/v1/customers', body, '"5b0d6c6e-3d1f-4c43-9f55-3c1c2b7e0a01"')
    assert.equal(first.status, 201)
    assert.equal(first.replayed, null)
    assert.equal(second.status, 201, 'the replay answers as the create did, not 409 duplicate-reference')
    assert.equal(second.replayed, 'true')
    assert.deepEqual(second.body, first.body)
    assert.equal(await count('customers'), before + 1)
    // The stored response is sealed with the tenant's data key, not kept in clear.
    const stored = await nodes.a.ctx.db.selectFrom('idempotency_keys').select('response').execute()
    assert.ok(stored.every((row) => !Buffer.from(row.response).toString('latin1').includes('Grace Idempotent')))
  })

  test('T286: a key used again with another body, or on another route, is refused with 422 problem+json and creates nothing', async () => {
    const key = 'reused-key-0001'
    const first = await post(nodes.a.url, '/v1/customers', { externalRef: 'IDEM-2', displayName: 'Alan' }, key)
    assert.equal(first.status, 201)
    const before = await count('customers')
    for (const [url, path, body] of [
      [nodes.b.url, '/v1/customers', { externalRef: 'IDEM-3', displayName: 'Alan' }],
      [nodes.a.url, '/v1/customers', { externalRef: 'IDEM-2', displayName: 'Alan T.' }],
      [nodes.b.url, '/v1/staff', { name: 'alan', role: 'agent' }],
    ] as const) {
      const refused = await post(url, path, body, key)
      assert.equal(refused.status, 422)
      assert.equal(refused.contentType, 'application/problem+json; charset=utf-8')
      assert.equal(refused.body.type, `${PROBLEM_BASE}request/idempotency-key-reused`)
    }
    assert.equal(await count('customers'), before)
    assert.equal(
      (await post(nodes.a.url, '/v1/customers', { externalRef: 'IDEM-2', displayName: 'Alan' }, key)).status,
      201,
    )
    // Another staff member's same key is theirs: keys are per principal.
    const other = await bank.staffToken('admin')
    const theirs = await fetch(`${nodes.b.url}/v1/customers`, {
      method: 'POST',
      headers: { authorization: `Bearer ${other.token}`, 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify({ externalRef: 'IDEM-4', displayName: 'Alan' }),
    })
    assert.equal(theirs.status, 201)
    assert.equal(await count('customers'), before + 1)
  })

  test('T287: the same create sent to both nodes at once makes one record: conversations, consents and staff alike', async () => {
    const cases = [
      ['conversations', '/v1/conversations', { customerId: bank.customerId }],
      [
        'consents',
        '/v1/consents',
        {
          customerId: bank.customerId,
          amount: { value: 125000, currency: 'EUR' },
          payee: { name: 'ACME Ltd', account: 'DE89370400440532013000' },
          reference: 'Invoice 42',
        },
      ],
      ['staff', '/v1/staff', { name: 'idem-agent', role: 'agent' }],
    ] as const
    for (const [table, path, body] of cases) {
      const before = await count(table)
      const key = `"${table}-${crypto.randomUUID()}"`
      const [one, two] = await Promise.all([post(nodes.a.url, path, body, key), post(nodes.b.url, path, body, key)])
      assert.equal(one.status, 201, `${path}: ${JSON.stringify(one.body)}`)
      assert.equal(two.status, 201, `${path}: ${JSON.stringify(two.body)}`)
      assert.equal(one.body.id, two.body.id, `${path}: both answered with the one record`)
      assert.deepEqual([one.replayed, two.replayed].sort(), ['true', null].sort())
      assert.equal(await count(table), before + 1, `${path}: one record`)
    }
  })

  test('T288: the SDK fails over after a lost answer with the same key, and the next node answers with the first record', async () => {
    const before = await count('customers')
    const keys: (string | null)[] = []
    let lose = true
    const client = new StrongroomClient({
      baseUrl: [nodes.a.url, nodes.b.url],
      credentials: new StaffToken(bank.adminToken),
      // The first node commits the create but its answer never arrives, as when a request times out.
      fetch: async (input, init) => {
        keys.push(new Headers(init?.headers).get('idempotency-key'))
        const response = await fetch(input, init)
        if (lose) {
          lose = false
          throw new TypeError('fetch failed')
        }
        return response
      },
    })
    const customer = await client.createCustomer({ externalRef: 'IDEM-SDK', displayName: 'Failover Customer' })
    assert.equal(client.baseUrl, nodes.b.url, 'the client moved to the second node')
    assert.equal(keys.length, 2)
    assert.match(keys[0] as string, /^"[0-9a-f-]{36}"$/)
    assert.equal(keys[1], keys[0], 'the retry carries the same key')
    assert.equal(customer.externalRef, 'IDEM-SDK')
    assert.equal(await count('customers'), before + 1)
  })

  test('T289: a malformed key is refused (400) before anything is created; without a key a create simply runs', async () => {
    const before = await count('customers')
    for (const key of ['', '"unterminated', 'a"b', 'x'.repeat(256), 'tab\there']) {
      const refused = await post(nodes.a.url, '/v1/customers', { externalRef: 'IDEM-BAD', displayName: 'B' }, key)
      assert.equal(refused.status, 400, JSON.stringify(key))
      assert.equal(refused.body.type, `${PROBLEM_BASE}request/invalid`)
    }
    assert.equal(await count('customers'), before)
    assert.equal(
      (await post(nodes.a.url, '/v1/customers', { externalRef: 'IDEM-NOKEY', displayName: 'N' })).status,
      201,
    )
    assert.equal(await count('customers'), before + 1)
  })
})
