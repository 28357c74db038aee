import assert from 'node:assert/strict'
import { createHash, generateKeyPairSync } from 'node:crypto'
import http from 'node:http'
import type net from 'node:net'
import { after, before, describe, test } from 'node:test'
import { StaffClient, StaffToken } from '@strongroom/sdk'
import { PROBLEM_BASE } from '../platform/http/problems.ts'
import { createTestBank, startTwoNodes, type TestBank, usingPostgres } from '../testing/harness.ts'
import { IDEMPOTENCY_CLAIM_WAIT_MS, IDEMPOTENCY_LEASE_MS, runIdempotently } from './idempotency.ts'

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
  const count = async (
    table:
      | 'customers'
      | 'conversations'
      | 'consents'
      | 'staff'
      | 'api_clients'
      | 'enrolment_codes'
      | 'staff_tokens'
      | 'staff_invitations'
      | 'conversation_notes'
      | 'canned_replies'
      | 'archive_holds',
  ) => {
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
    const client = new StaffClient({
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

  test('T320: the other creates a client retries (API clients, enrolment codes, staff tokens and invitations, notes, canned replies, legal holds) replay, refuse another body, and make one record under concurrency', async () => {
    const staff = await post(nodes.a.url, '/v1/staff', { name: 'idem-target', role: 'agent' })
    const conversation = await post(nodes.a.url, '/v1/conversations', { customerId: bank.customerId })
    const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' })
    const hello = { shortcut: 'idem-hello', title: 'Hello', text: 'Hello, how can I help?' }
    const hold = { scopeKind: 'customer', scopeId: bank.customerId, reason: 'Case 7' }
    const apiClient = { name: 'Core banking', jwks: { keys: [jwk] }, scopes: ['consents:write'] }
    const notes = `/v1/conversations/${conversation.body.id}/notes`
    const tokens = `/v1/staff/${staff.body.id}/tokens`
    const invitations = `/v1/staff/${staff.body.id}/invitations`
    // Each create, and another request sent with the same key: another body, or (a body-less create) another route.
    const cases = [
      ['api_clients', '/v1/api-clients', apiClient, ['/v1/api-clients', { ...apiClient, name: 'Payments' }]],
      ['enrolment_codes', `/v1/customers/${bank.customerId}/enrolment-codes`, {}, ['/v1/canned-replies', hello]],
      ['staff_tokens', tokens, { ttlSeconds: 600 }, [tokens, { ttlSeconds: 900 }]],
      ['staff_invitations', invitations, { ttlSeconds: 900 }, [invitations, { ttlSeconds: 1200 }]],
      ['conversation_notes', notes, { text: 'Called back at 3 pm' }, [notes, { text: 'Called back at 4 pm' }]],
      ['canned_replies', '/v1/canned-replies', hello, ['/v1/canned-replies', { ...hello, title: 'Hi' }]],
      ['archive_holds', '/v1/archive/holds', hold, ['/v1/archive/holds', { ...hold, reason: 'Case 8' }]],
    ] as const
    for (const [table, path, body, [otherPath, otherBody]] of cases) {
      const before = await count(table)
      const key = `"${table}-${crypto.randomUUID()}"`
      const first = await post(nodes.a.url, path, body, key)
      assert.equal(first.status, 201, `${path}: ${JSON.stringify(first.body)}`)
      const replay = await post(nodes.b.url, path, body, key)
      assert.equal(replay.status, 201, `${path}: ${JSON.stringify(replay.body)}`)
      assert.equal(replay.replayed, 'true', path)
      assert.deepEqual(replay.body, first.body, `${path}: the first response again`)
      assert.equal(await count(table), before + 1, `${path}: one record`)
      const reused = await post(nodes.b.url, otherPath, otherBody, key)
      assert.equal(reused.status, 422, `${path}: ${JSON.stringify(reused.body)}`)
      assert.equal(reused.body.type, `${PROBLEM_BASE}request/idempotency-key-reused`)
      assert.equal(await count(table), before + 1, `${path}: nothing more`)
      if (table === 'canned_replies') continue // its shortcut must be new: a second create is refused anyway
      const concurrentKey = `"${table}-${crypto.randomUUID()}"`
      const [one, two] = await Promise.all([
        post(nodes.a.url, path, body, concurrentKey),
        post(nodes.b.url, path, body, concurrentKey),
      ])
      assert.equal(one.status, 201, `${path}: ${JSON.stringify(one.body)}`)
      assert.equal(two.status, 201, `${path}: ${JSON.stringify(two.body)}`)
      assert.deepEqual(one.body, two.body, `${path}: both answered with the one record`)
      assert.equal(await count(table), before + 2, `${path}: one more record`)
    }
  })

  // On the embedded database there is one connection: a hung transaction holds all of it, not one key.
  const onPostgres = { skip: !usingPostgres && 'needs PostgreSQL (DATABASE_URL): PGlite has one connection' }

  test(
    'T319: a retry while the first attempt hangs holding its key (node stopped) is answered 409 with Retry-After, not left waiting; the lease frees the key',
    onPostgres,
    async () => {
      const admin = await bank.staffToken('admin')
      const body = { externalRef: 'IDEM-HUNG', displayName: 'Held Key' }
      const key = 'hung-holder-0001'
      const before = await count('customers')
      // Node A claims the key and then stops, as under SIGSTOP: its transaction sits idle, holding the key's row.
      let resume: () => void = () => {}
      const stopped = new Promise<void>((resolve) => {
        resume = resolve
      })
      const holder = runIdempotently(
        nodes.a.ctx,
        {
          tenantId: bank.tenantId,
          owner: `staff:${admin.staffId}`,
          key,
          fingerprint: createHash('sha256')
            .update(`POST /v1/customers\n${JSON.stringify(body)}`)
            .digest(),
        },
        201,
        () => stopped,
      )
      const holderOutcome = holder.then(
        () => 'committed',
        () => 'ended',
      )
      await new Promise((resolve) => setTimeout(resolve, 300))
      const retry = () =>
        fetch(`${nodes.b.url}/v1/customers`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${admin.token}`,
            'content-type': 'application/json',
            'idempotency-key': key,
          },
          body: JSON.stringify(body),
        })
      const started = performance.now()
      const refused = await retry()
      const waitedMs = performance.now() - started
      assert.equal(refused.status, 409)
      assert.equal(refused.headers.get('retry-after'), '2')
      assert.equal(refused.headers.get('content-type'), 'application/problem+json; charset=utf-8')
      assert.equal(
        ((await refused.json()) as { type: string }).type,
        `${PROBLEM_BASE}request/idempotency-key-in-progress`,
      )
      assert.ok(waitedMs >= IDEMPOTENCY_CLAIM_WAIT_MS - 100, `waited for the first attempt: ${waitedMs} ms`)
      assert.ok(waitedMs < IDEMPOTENCY_CLAIM_WAIT_MS + 2000, `not the statement timeout: ${waitedMs} ms`)

      // After the lease PostgreSQL has ended the stopped node's transaction: the create runs once, on node B.
      await new Promise((resolve) => setTimeout(resolve, IDEMPOTENCY_LEASE_MS + 500 - (performance.now() - started)))
      const created = await retry()
      assert.equal(created.status, 201, await created.clone().text())
      assert.equal(created.headers.get('idempotency-replayed'), null)
      // The stopped node resumes: its transaction is gone, it commits nothing.
      resume()
      assert.equal(await holderOutcome, 'ended')
      assert.equal(await count('customers'), before + 1)
      const replay = await retry()
      assert.equal(replay.status, 201)
      assert.equal(replay.headers.get('idempotency-replayed'), 'true')
      assert.deepEqual(await replay.json(), await created.json())
    },
  )

  test('T319: the SDK sends a create answered 409 in progress again with the same key after Retry-After', async () => {
    // A node whose first answer is "in progress" and second the record, as after a stopped node's lease ran out.
    const keys: (string | undefined)[] = []
    const node = http.createServer((request, response) => {
      keys.push(request.headers['idempotency-key'] as string | undefined)
      request.resume()
      if (keys.length === 1) {
        response
          .writeHead(409, { 'content-type': 'application/problem+json', 'retry-after': '1' })
          .end(JSON.stringify({ type: `${PROBLEM_BASE}request/idempotency-key-in-progress`, status: 409 }))
      } else {
        response
          .writeHead(201, { 'content-type': 'application/json' })
          .end(JSON.stringify({ id: 'cus_retried', externalRef: 'IDEM-409', displayName: 'Retried' }))
      }
    })
    await new Promise<void>((resolve) => node.listen(0, '127.0.0.1', resolve))
    try {
      const client = new StaffClient({
        baseUrl: `http://127.0.0.1:${(node.address() as net.AddressInfo).port}`,
        credentials: new StaffToken(bank.adminToken),
      })
      const started = performance.now()
      const customer = await client.createCustomer({ externalRef: 'IDEM-409', displayName: 'Retried' })
      assert.equal(customer.id, 'cus_retried')
      assert.equal(keys.length, 2)
      assert.equal(keys[1], keys[0], 'the same key')
      assert.ok(performance.now() - started >= 900, 'after Retry-After')
    } finally {
      await new Promise((resolve) => node.close(resolve))
    }
  })
})
