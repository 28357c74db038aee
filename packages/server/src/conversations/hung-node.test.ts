import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { after, before, describe, test } from 'node:test'
import { DeviceClient, DeviceKey, enrolDevice, StaffClient, StaffToken } from '@strongroom/sdk'
import WebSocket, { WebSocketServer } from 'ws'
import { PROBLEM_BASE } from '../platform/http/problems.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'

/** A node that stopped answering (as under SIGSTOP): it accepts connections and never says a word. */
async function silentNode(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** A stream node that signs a client in and then hangs: no heartbeat, no close, nothing. */
async function hangingStreamNode(heartbeatMs: number): Promise<{ url: string; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/v1/stream' })
  await new Promise((resolve) => wss.once('listening', resolve))
  wss.on('connection', (socket) => {
    socket.once('message', () => {
      socket.send(JSON.stringify({ type: 'ready', sessionId: 'hung', heartbeatMs, conversations: [] }))
      // A hung process reads nothing more: neither pings nor a close frame get an answer.
      socket.pause()
    })
  })
  return {
    url: `http://127.0.0.1:${(wss.address() as net.AddressInfo).port}`,
    async close() {
      for (const client of wss.clients) client.terminate()
      await new Promise((resolve) => wss.close(resolve))
    },
  }
}

describe('a node that stops answering', () => {
  let server: TestServer
  let bank: TestBank
  let silent: Awaited<ReturnType<typeof silentNode>>

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    silent = await silentNode()
  })
  after(async () => {
    await silent.close()
    await server.stop()
  })

  test('a request times out on it and goes to the next node', async () => {
    const agent = new StaffClient({
      baseUrl: [silent.url, server.url],
      credentials: new StaffToken(bank.agentToken),
      // Long enough for the live node to answer on a loaded machine: the timeout is each attempt's, the live node's too.
      timeoutMs: 2000,
    })
    const started = performance.now()
    const conversation = await agent.createConversation({ customerId: bank.customerId })
    const elapsedMs = performance.now() - started
    assert.match(conversation.id, /^cnv_/)
    assert.equal(agent.baseUrl, server.url)
    assert.ok(elapsedMs < 2000 + 3000, `answered after ${elapsedMs.toFixed(0)} ms`)
  })

  test('a request refused by a draining node (503 server/unavailable) goes to the next node', async () => {
    // What a node answers between SIGTERM and its exit: it ran nothing, so the next node may.
    const draining = http.createServer((_request, response) => {
      response
        .writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '1', connection: 'close' })
        .end(JSON.stringify({ type: `${PROBLEM_BASE}server/unavailable`, title: 'shutting down', status: 503 }))
    })
    await new Promise<void>((resolve) => draining.listen(0, '127.0.0.1', resolve))
    try {
      const agent = new StaffClient({
        baseUrl: [`http://127.0.0.1:${(draining.address() as net.AddressInfo).port}`, server.url],
        credentials: new StaffToken(bank.agentToken),
      })
      const conversation = await agent.createConversation({ customerId: bank.customerId })
      assert.match(conversation.id, /^cnv_/)
      assert.equal(agent.baseUrl, server.url)
    } finally {
      await new Promise((resolve) => draining.close(resolve))
    }
  })

  test('enrolment tries the next node too, and the enrolled client starts on the one that answered', async () => {
    const { client, device } = await enrolDevice({
      baseUrl: [silent.url, server.url],
      enrolmentCode: await bank.enrolmentCode(),
      label: 'phone',
      timeoutMs: 2000,
    })
    assert.equal(device.status, 'active')
    assert.equal(client.baseUrl, server.url)
    assert.deepEqual(client.transport.baseUrls, [server.url, silent.url])
  })

  test('a device renews its token on the next node when the first never answers the renewal', async () => {
    const { keys } = await bank.enrol('renewing phone')
    // No token yet: the first request renews it, at the node the client is on, which is silent.
    const device = new DeviceClient({
      baseUrl: [silent.url, server.url],
      credentials: new DeviceKey(keys, { timeoutMs: 2000 }),
      timeoutMs: 2000,
    })
    const me = await device.me()
    assert.equal(me.customerId, bank.customerId)
    assert.equal(device.baseUrl, server.url)
  })

  test('a stream leaves a node that went silent after two heartbeats, not a close timeout later', async () => {
    const heartbeatMs = 1000
    const hung = await hangingStreamNode(heartbeatMs)
    const agent = new StaffClient({
      baseUrl: [hung.url, server.url],
      credentials: new StaffToken(bank.agentToken),
      WebSocket: WebSocket as never,
    })
    const states: { state: string; at: number }[] = []
    const stream = agent.stream({ onStateChange: (state) => states.push({ state, at: performance.now() }) })
    try {
      await stream.ready()
      const hungAt = performance.now()
      assert.equal(agent.baseUrl, hung.url)
      const deadline = Date.now() + 10_000
      while (states.filter((s) => s.state === 'open').length < 2 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      const reopened = states.filter((s) => s.state === 'open')[1]
      assert.ok(reopened, `states: ${states.map((s) => s.state).join(', ')}`)
      assert.equal(agent.baseUrl, server.url)
      const movedMs = reopened.at - hungAt
      assert.ok(movedMs < 2 * heartbeatMs + 1500, `moved to the next node after ${movedMs.toFixed(0)} ms`)
    } finally {
      stream.close()
      await hung.close()
    }
  })
})
