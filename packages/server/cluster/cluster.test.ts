import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import https from 'node:https'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import tls from 'node:tls'
import WebSocket from 'ws'
import { strongroomFromSource } from '../src/testing/cli.ts'
import { createTestDatabase, type TestDatabase } from '../src/testing/harness.ts'
import { freePorts, httpsStatus, type RunningCluster, staffOfNewBank, startCluster } from './local-cluster.ts'

const haproxyInstalled = !spawnSync('haproxy', ['-v'], { stdio: 'ignore' }).error
const services = Boolean(process.env.DATABASE_URL && process.env.NATS_URL)
// Under CI the cluster must run: a missing haproxy, PostgreSQL or NATS fails the test instead of skipping it.
const skip =
  process.env.CI === 'true'
    ? false
    : !haproxyInstalled
      ? 'needs haproxy (apt-get install haproxy)'
      : !services && 'needs DATABASE_URL and NATS_URL'

interface Answer {
  status: number
  headers: import('node:http').IncomingHttpHeaders
  body: string
  protocol: string | null
}

function request(
  cluster: RunningCluster,
  method: string,
  pathname: string,
  options: { token?: string; body?: unknown; timeoutMs?: number } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${cluster.url}${pathname}`,
      {
        method,
        ca: cluster.caCertificate,
        // A connection of its own each time: an idle kept-alive one may be closed by HAProxy as it is reused.
        agent: false,
        timeout: options.timeoutMs ?? 10_000,
        headers: {
          ...(options.token && { authorization: `Bearer ${options.token}` }),
          ...(options.body !== undefined && { 'content-type': 'application/json' }),
        },
      },
      (response) => {
        const protocol = (response.socket as tls.TLSSocket).getProtocol()
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            protocol,
          }),
        )
      },
    )
    req.on('timeout', () => req.destroy(new Error(`${method} ${pathname} timed out`)))
    req.on('error', reject)
    req.end(options.body === undefined ? undefined : JSON.stringify(options.body))
  })
}

/** How many GET /healthz each node counted, from its own /metrics listener. */
async function healthzCount(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text()
  const line = text
    .split('\n')
    .find((l) => l.startsWith('strongroom_http_requests_total{') && l.includes('route="/healthz"'))
  return line ? Number(line.split(' ').pop()) : 0
}

/**
 * `npm run cluster` as a bank would run it: HAProxy (deploy/haproxy.cfg) terminating TLS in front of three
 * production-mode nodes (deploy/strongroom.env) on PostgreSQL and NATS.
 */
describe('the cluster: HAProxy with TLS in front of three production nodes', { skip }, () => {
  let database: TestDatabase
  let stateDir: string
  let cluster: RunningCluster

  before(async () => {
    assert.ok(haproxyInstalled, 'haproxy is not installed (apt-get install haproxy)')
    assert.ok(services, 'the cluster runs on PostgreSQL and NATS: set DATABASE_URL and NATS_URL')
    database = await createTestDatabase()
    stateDir = mkdtempSync(path.join(os.tmpdir(), 'sr-cluster-'))
    const [httpsPort, n1, n2, n3, m1, m2, m3] = (await freePorts(7)) as [number, ...number[]] as number[]
    cluster = await startCluster({
      stateDir,
      databaseUrl: database.url as string,
      natsUrl: process.env.NATS_URL as string,
      httpsPort: httpsPort as number,
      nodePorts: [n1, n2, n3] as [number, number, number],
      metricsPorts: [m1, m2, m3] as [number, number, number],
      nodeEnv: { LOG_LEVEL: 'warn' },
      strongroom: strongroomFromSource,
    })
  })

  after(async () => {
    await cluster?.stop()
    await database?.drop()
    if (stateDir) rmSync(stateDir, { recursive: true, force: true })
  })

  test('speaks TLS 1.3 only, with HSTS and the secure headers on API answers', async () => {
    const answer = await request(cluster, 'GET', '/openapi.json')
    assert.equal(answer.status, 200)
    assert.equal(answer.protocol, 'TLSv1.3')
    assert.equal(answer.headers['strict-transport-security'], 'max-age=63072000')
    assert.equal(answer.headers['x-content-type-options'], 'nosniff')
    assert.equal(answer.headers['referrer-policy'], 'no-referrer')
    assert.equal(answer.headers['x-frame-options'], 'DENY')
    // HAProxy's own answers carry HSTS too, and an unknown path is the nodes' problem document.
    const missing = await request(cluster, 'GET', '/no-such-thing')
    assert.equal(missing.status, 404)
    assert.equal(missing.headers['strict-transport-security'], 'max-age=63072000')
    assert.equal(missing.headers['content-type'], 'application/problem+json; charset=utf-8')

    const port = Number(new URL(cluster.url).port)
    const refused = await new Promise<Error | undefined>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca: cluster.caCertificate, maxVersion: 'TLSv1.2' }, () => {
        socket.end()
        resolve(undefined)
      })
      socket.on('error', resolve)
    })
    assert.ok(refused, 'a TLS 1.2 client is refused')
    // Metrics are on each node's own listener, never through the public port.
    assert.equal((await request(cluster, 'GET', '/metrics')).status, 404)
  })

  test('requests are spread over all three nodes (no stickiness)', async () => {
    const before = await Promise.all(cluster.nodes.map((node) => healthzCount(node.metricsUrl)))
    for (let i = 0; i < 12; i++) assert.equal((await request(cluster, 'GET', '/healthz')).status, 200)
    const afterCounts = await Promise.all(cluster.nodes.map((node) => healthzCount(node.metricsUrl)))
    const served = afterCounts.map((count, i) => count - (before[i] as number))
    assert.equal(
      served.reduce((a, b) => a + b, 0),
      12,
    )
    for (const [i, count] of served.entries()) assert.ok(count > 0, `node${i + 1} served none of 12: ${served}`)
  })

  test('a WebSocket stream goes through HAProxy both ways', async () => {
    const admin = await staffOfNewBank(cluster, 'admin')
    const customer = await request(cluster, 'POST', '/v1/customers', {
      token: admin.token,
      body: { externalRef: 'C-1', displayName: 'Cluster Customer' },
    })
    assert.equal(customer.status, 201, customer.body)
    const conversation = await request(cluster, 'POST', '/v1/conversations', {
      token: admin.token,
      body: { customerId: (JSON.parse(customer.body) as { id: string }).id },
    })
    assert.equal(conversation.status, 201, conversation.body)
    const conversationId = (JSON.parse(conversation.body) as { id: string }).id

    const socket = new WebSocket(`${cluster.url.replace('https:', 'wss:')}/v1/stream`, { ca: cluster.caCertificate })
    const frames: { type: string; [key: string]: unknown }[] = []
    const waitFor = (type: string) =>
      new Promise<{ type: string; [key: string]: unknown }>((resolve, reject) => {
        const deadline = setTimeout(() => reject(new Error(`no ${type} frame: ${JSON.stringify(frames)}`)), 10_000)
        const check = () => {
          const frame = frames.find((f) => f.type === type)
          if (frame) {
            clearTimeout(deadline)
            resolve(frame)
          } else setTimeout(check, 20)
        }
        check()
      })
    socket.on('message', (data) => frames.push(JSON.parse(String(data))))
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject))
    socket.send(JSON.stringify({ type: 'auth', authorization: `Bearer ${admin.token}` }))
    await waitFor('ready')
    socket.send(
      JSON.stringify({
        type: 'send',
        ref: 'r1',
        conversationId,
        clientMessageId: 'cluster-message-1',
        contentType: 'text/plain',
        ciphertext: Buffer.from('through HAProxy').toString('base64'),
      }),
    )
    const sent = await waitFor('sent')
    assert.equal((sent.message as { seq: number }).seq, 1)
    socket.close()
    const read = await request(cluster, 'GET', `/v1/conversations/${conversationId}/messages`, { token: admin.token })
    assert.equal(read.status, 200, read.body)
    assert.match(read.body, new RegExp(Buffer.from('through HAProxy').toString('base64')))
  })

  test('a node that stops answering is routed around within the check interval; a killed one at once', async () => {
    const [, second, third] = cluster.nodes as [unknown, (typeof cluster.nodes)[number], (typeof cluster.nodes)[number]]
    // A frozen node accepts connections and never answers: only the health check can take it out.
    third.process.kill('SIGSTOP')
    try {
      // Checks every second (500 ms while a state changes), two failures to go down: about 2 s, well within 4.
      await new Promise((resolve) => setTimeout(resolve, 4000))
      for (let i = 0; i < 9; i++) {
        assert.equal((await request(cluster, 'GET', '/healthz', { timeoutMs: 1500 })).status, 200, `request ${i}`)
      }
      // A killed node refuses connections: HAProxy retries those on another node before it is even marked down.
      second.process.kill('SIGKILL')
      for (let i = 0; i < 6; i++) {
        assert.equal((await request(cluster, 'GET', '/healthz', { timeoutMs: 1500 })).status, 200, `request ${i}`)
      }
    } finally {
      third.process.kill('SIGCONT')
    }
    // The node that came back is put back in rotation.
    const deadline = Date.now() + 10_000
    const before = await healthzCount(third.metricsUrl)
    while ((await healthzCount(third.metricsUrl)) === before && Date.now() < deadline) {
      assert.equal(await httpsStatus(`${cluster.url}/healthz`, cluster.caCertificate), 200)
    }
    assert.ok((await healthzCount(third.metricsUrl)) > before, 'the thawed node serves again')
  })
})
