import assert from 'node:assert/strict'
import { request as httpRequest } from 'node:http'
import { after, before, describe, test } from 'node:test'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../../testing/harness.ts'
import { PROBLEM_BASE } from './problems.ts'

/** Sends raw bytes and reads the whole answer, so that a reset shows as an error rather than a status. */
function rawExchange(url: string, head: string): Promise<{ status: number; type: string; body: string }> {
  const { port } = new URL(url)
  return new Promise((resolve, reject) => {
    const [requestLine = '', ...headerLines] = head.split('\r\n')
    const [method = 'GET', path = '/'] = requestLine.split(' ')
    const headers = Object.fromEntries(
      headerLines.filter(Boolean).map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)]),
    )
    const outgoing = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent: false }, (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk) => {
        body += chunk
      })
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, type: String(response.headers['content-type']), body }),
      )
      response.on('error', reject)
    })
    outgoing.on('error', reject)
    outgoing.end()
  })
}

function assertProblem(
  response: { status?: number; statusCode?: number; type?: string; headers?: Record<string, unknown>; body: string },
  status: number,
  kind: string,
) {
  assert.equal(response.statusCode ?? response.status, status, response.body)
  assert.match(String(response.type ?? response.headers?.['content-type']), /^application\/problem\+json/)
  const body = JSON.parse(response.body) as { type: string; status: number }
  assert.equal(body.type, PROBLEM_BASE + kind)
  assert.equal(body.status, status)
  assert.doesNotMatch(response.body, /FST_|fastify/i)
}

describe('inputs that once made a 500 or a framework answer (issue 21, scope 4)', () => {
  let server: TestServer
  let bank: TestBank
  let admin: { authorization: string }
  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    admin = { authorization: `Bearer ${bank.adminToken}` }
  })
  after(() => server.stop())

  test('a number beyond the safe integer range is refused by the schema, not by a bigint overflow', async () => {
    const response = await server.app.inject({ url: '/v1/audit/events?after=100000000000000000000', headers: admin })
    assertProblem(response, 400, 'request/invalid')
    const negative = await server.app.inject({ url: '/v1/audit/events?after=-1', headers: admin })
    assertProblem(negative, 400, 'request/invalid')
  })

  test('a NUL character or an unpaired surrogate anywhere is refused and nothing is stored', async () => {
    const before = await server.app.inject({ url: '/v1/staff', headers: admin })
    for (const payload of [
      '{"name":"Eve\\u0000","role":"agent"}',
      '{"name":"Eve\\ud800","role":"agent"}',
      '{"name":"Eve\\udc00x","role":"agent"}',
      '{"name":"Eve","role":"agent","\\u0000":1}',
    ]) {
      const response = await server.app.inject({
        method: 'POST',
        url: '/v1/staff',
        headers: { ...admin, 'content-type': 'application/json' },
        payload,
      })
      assertProblem(response, 400, 'request/unstorable-value')
    }
    const query = await server.app.inject({ url: '/v1/audit/events?action=%00', headers: admin })
    assertProblem(query, 400, 'request/unstorable-value')
    const path = await server.app.inject({ url: '/v1/customers/cus_%00', headers: admin })
    assertProblem(path, 400, 'request/unstorable-value')
    const after = await server.app.inject({ url: '/v1/staff', headers: admin })
    assert.equal(after.body, before.body)
    // A well-formed pair (an emoji) is text like any other.
    const emoji = await server.app.inject({
      method: 'POST',
      url: '/v1/staff',
      headers: admin,
      payload: { name: 'Eve 🙂', role: 'agent' },
    })
    assert.equal(emoji.statusCode, 201, emoji.body)
  })

  test('a body nested thousands deep is a 400 on any route, signed in or not, not a stack overflow', async () => {
    // 5,000 levels are 10 KB of brackets, well under the body limit; the NUL check walked them by recursion.
    const deep = (inner: string) => `${'['.repeat(5000)}${inner}${']'.repeat(5000)}`
    for (const [url, headers, payload] of [
      ['/v1/pivot/open', {}, deep('')],
      ['/v1/customers', admin, `{"externalRef":"R-1","displayName":"Deep","phoneNumber":${deep('')}}`],
      ['/v1/customers', admin, `{"externalRef":"R-2","displayName":"Deep","phoneNumber":${deep('"\\u0000"')}}`],
    ] as const) {
      const response = await server.app.inject({
        method: 'POST',
        url,
        headers: { ...headers, 'content-type': 'application/json' },
        payload,
      })
      assertProblem(response, 400, payload.includes('u0000') ? 'request/unstorable-value' : 'request/invalid')
    }
  })

  test('the token endpoint answers a wrong content type or broken JSON with a problem, not a serialization error', async () => {
    for (const [type, payload] of [
      ['text/plain', 'grant_type=client_credentials'],
      ['multipart/form-data; boundary=x', '--x--'],
      ['application/xml', '<a/>'],
    ] as const) {
      const response = await server.app.inject({
        method: 'POST',
        url: '/v1/oauth/token',
        headers: { 'content-type': type },
        payload,
      })
      assertProblem(response, 415, 'request/unsupported-media-type')
    }
    const broken = await server.app.inject({
      method: 'POST',
      url: '/v1/oauth/token',
      headers: { 'content-type': 'application/json' },
      payload: '{"grant_type":',
    })
    assertProblem(broken, 400, 'request/malformed-json')
    // A well-formed request still gets the protocol's own error format.
    const oauth = await server.app.inject({
      method: 'POST',
      url: '/v1/oauth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'grant_type=password',
    })
    assert.equal(oauth.statusCode, 400)
    assert.equal(JSON.parse(oauth.body).error, 'unsupported_grant_type')
  })

  test('a URL that does not decode, a path parameter longer than any id: problems from the catalogue', async () => {
    assertProblem(await rawExchange(server.url, 'GET /v1/%zz HTTP/1.1\r\nHost: x\r\n'), 400, 'request/bad-url')
    assertProblem(
      await rawExchange(server.url, `GET /v1/customers/${'a'.repeat(500)} HTTP/1.1\r\nHost: x\r\n`),
      414,
      'request/uri-too-long',
    )
  })

  test('URLs and headers too large for Node: 414 and 431 problems, and no connection is reset', async () => {
    const longUrl = rawExchange(server.url, `GET /v1/${'a'.repeat(70_000)} HTTP/1.1\r\nHost: x\r\n`)
    assertProblem(await longUrl, 414, 'request/uri-too-long')
    // Refused and ordinary requests at once: every one gets its full answer.
    const exchanges = Array.from({ length: 24 }, (_, i) =>
      i % 2 === 0
        ? rawExchange(server.url, `GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(40_000)}\r\n`)
        : rawExchange(server.url, 'GET /healthz HTTP/1.1\r\nHost: x\r\n'),
    )
    const answers = await Promise.all(exchanges)
    for (const [i, answer] of answers.entries()) {
      if (i % 2 === 0) assertProblem(answer, 431, 'request/headers-too-large')
      else assert.equal(answer.status, 200)
    }
  })
})
