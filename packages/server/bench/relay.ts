import { execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'

/** The bare relay's figures (`../shared/bench/ws-relay.mjs`): no storage, no authentication, no crypto. */
export interface RelayResult {
  msgsPerSec: number
  p50Ms: number
  p99Ms: number
  serverCpuUsPerMsg: number
}

const RELAY = path.resolve(import.meta.dirname, '../../../../shared/bench/ws-relay.mjs')

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
    server.once('error', reject)
  })
}

/**
 * Runs the bare Node WebSocket relay on the same load (pairs, messages each, window, bytes) in its own process, right
 * after the measured run, so that the ratio to it is read on the same machine at the same moment. Undefined when the
 * relay script is not there (outside this workspace).
 */
export async function runRelay(load: {
  pairs: number
  messages: number
  window: number
  size: number
}): Promise<RelayResult | undefined> {
  if (!existsSync(RELAY)) return undefined
  const port = await freePort()
  // Run from the project root, where `ws` resolves.
  const cwd = path.resolve(import.meta.dirname, '../../..')
  const server = spawn(process.execPath, [RELAY, 'server', String(port)], { cwd, stdio: 'ignore' })
  try {
    for (let attempt = 0; ; attempt++) {
      const up = await new Promise<boolean>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.end()
          resolve(true)
        })
        socket.once('error', () => resolve(false))
      })
      if (up) break
      if (attempt > 100) throw new Error('the relay did not start')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const counts = [load.pairs, load.messages, load.window, load.size].map(String)
    const args = [RELAY, 'client', String(port), String(server.pid), ...counts]
    const out = execFileSync(process.execPath, args, { cwd, encoding: 'utf8' })
    const last = JSON.parse(out.trim().split('\n').at(-1) as string) as RelayResult
    return {
      msgsPerSec: last.msgsPerSec,
      p50Ms: last.p50Ms,
      p99Ms: last.p99Ms,
      serverCpuUsPerMsg: last.serverCpuUsPerMsg,
    }
  } finally {
    server.kill('SIGTERM')
  }
}
