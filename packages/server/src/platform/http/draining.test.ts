import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { describe, test } from 'node:test'
import { createLogger } from '../logging.ts'
import { createMetrics } from '../metrics.ts'
import { createHttpServer } from './fastify.ts'
import { PROBLEM_BASE } from './problems.ts'

interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

const get = (agent: http.Agent, url: string) =>
  new Promise<Answer>((resolve, reject) => {
    http
      .get(url, { agent }, (response) => {
        let body = ''
        response.setEncoding('utf8')
        response.on('data', (chunk: string) => {
          body += chunk
        })
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }))
      })
      .on('error', reject)
  })

/** Everything a raw connection receives until the server closes it. */
const readUntilClosed = (socket: net.Socket) =>
  new Promise<string>((resolve) => {
    let text = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      text += chunk
    })
    socket.on('close', () => resolve(text))
  })

describe('a server closing (SIGTERM) with kept-alive connections', () => {
  test('issue 21: close waits for the request under way, not for its kept-alive connection; a new request is refused', async () => {
    const app = await createHttpServer({
      logger: createLogger('silent'),
      metrics: createMetrics(),
      bodyLimit: 1024,
      trustProxy: false,
    })
    let release: () => void = () => {}
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    app.get('/quick', async () => ({ ok: true }))
    app.get('/slow', async () => {
      await released
      return { finished: true }
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as net.AddressInfo
    const base = `http://127.0.0.1:${port}`
    const agent = new http.Agent({ keepAlive: true })
    try {
      // Two kept-alive connections: one left idle, one busy with a request when the close begins.
      await Promise.all([get(agent, `${base}/quick`), get(agent, `${base}/quick`)])
      const slow = get(agent, `${base}/slow`)
      // A third connection has sent only part of its request's headers when the close begins.
      const late = net.connect(port, '127.0.0.1')
      await new Promise((resolve) => late.once('connect', resolve))
      const lateAnswer = readUntilClosed(late)
      late.write('GET /quick HTTP/1.1\r\nHost: localhost\r\n')
      await new Promise((resolve) => setTimeout(resolve, 100))

      const started = performance.now()
      const closed = app.close()
      await new Promise((resolve) => setTimeout(resolve, 100))
      late.write('\r\n')
      release()
      const answer = await slow
      const outcome = await Promise.race([
        closed.then(() => 'closed'),
        new Promise((resolve) => setTimeout(() => resolve('still open after 3 s'), 3000)),
      ])
      const closeMs = Math.round(performance.now() - started)
      console.log(JSON.stringify({ closeMs }))

      assert.equal(outcome, 'closed', 'the close did not wait for the kept-alive connections (72 s in Fastify)')
      assert.equal(answer.status, 200, 'the request under way finished')
      assert.deepEqual(JSON.parse(answer.body), { finished: true })
      assert.equal(answer.headers.connection, 'close', 'and its answer closed the connection')
      const refused = await lateAnswer
      assert.match(refused, /^HTTP\/1\.1 503 /)
      assert.match(refused, /\r\ncontent-type: application\/problem\+json; charset=utf-8\r\n/i)
      assert.match(refused, /\r\nretry-after: 1\r\n/i)
      assert.match(refused, /\r\nconnection: close\r\n/i)
      assert.equal(JSON.parse(refused.slice(refused.indexOf('\r\n\r\n') + 4)).type, `${PROBLEM_BASE}server/unavailable`)
    } finally {
      agent.destroy()
      await app.close()
    }
  })
})
