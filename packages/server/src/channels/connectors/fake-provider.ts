import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'

/** For tests: a local HTTP server that plays a provider's API, answering from a script and recording every request. */
export interface RecordedRequest {
  method: string
  /** Path and query string. */
  path: string
  headers: IncomingHttpHeaders
  body: string
}

/** An HTTP answer, or 'drop' to close the connection without one (a network error for the client). */
export type ScriptedReply = { status: number; headers?: Record<string, string>; json?: unknown } | 'drop'

export interface FakeProvider {
  baseUrl: string
  requests: RecordedRequest[]
  close(): Promise<void>
}

/** Answers the n-th request with the n-th reply, and any after the script runs out with the last one. */
export async function startFakeProvider(script: ScriptedReply[]): Promise<FakeProvider> {
  const requests: RecordedRequest[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      })
      const reply = script[Math.min(requests.length, script.length) - 1] ?? { status: 500 }
      if (reply === 'drop') {
        req.socket.destroy()
        return
      }
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers })
      res.end(reply.json === undefined ? '' : JSON.stringify(reply.json))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections()
        server.close((error) => (error ? reject(error) : resolve()))
      }),
  }
}

/** A sleep that returns at once and remembers how long it was asked to wait. */
export function recordingSleep(): { sleep: (ms: number) => Promise<void>; delays: number[] } {
  const delays: number[] = []
  return {
    delays,
    sleep: async (ms: number) => {
      delays.push(ms)
    },
  }
}
