/**
 * Idle authenticated stream connections on one node, and the server memory each one costs.
 *
 *   npm run bench:sockets                       50,000 connections, PostgreSQL (DATABASE_URL or the local default)
 *   npm run bench:sockets -- --connections 20000 --pglite
 *
 * Devices are enrolled as customers' apps are (each with a conversation); then each connection signs in as one of
 * them with its own DPoP proof, exactly as the SDK's stream does, and stays idle (the server's heartbeat pings it).
 * Connections come from client processes, each from its own loopback address (127.0.0.2, .3, …) so that no address
 * runs out of ephemeral ports; every process (the server's too) raises its open-file limit to the hard limit. When a
 * limit of the machine stops the count short of the target, the bench opens as many as the limit allows and says
 * which limit. Memory is the server's resident set and V8 heap (from /metrics) after the connections minus before,
 * per connection (garbage not yet collected included). Prints progress, then one JSON line.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { type DeviceClient, enrolDevice, StaffClient, StaffToken } from '@strongroom/sdk'
import WebSocket from 'ws'
import { createTestDatabase } from '../src/testing/harness.ts'

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '50000' },
    devices: { type: 'string', default: '100' },
    'per-address': { type: 'string', default: '10000' },
    pglite: { type: 'boolean', default: false },
    worker: { type: 'string' },
    url: { type: 'string' },
  },
})
const cli = path.resolve(import.meta.dirname, '../bin/strongroom.js')
const log = (line: string) => process.stderr.write(`${line}\n`)
/** File descriptors a process keeps beside its sockets (database pool, bus, logs, modules): kept free of the count. */
const RESERVE_FDS = 500
const BATCH = 200

/** Runs a command with its open-file limit raised to the hard limit (what an unprivileged process may do). */
function withRaisedLimit(command: string, commandArgs: string[], options: Parameters<typeof spawn>[2]): ChildProcess {
  return spawn(
    '/bin/sh',
    ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', command, ...commandArgs],
    options,
  )
}

const hardLimit = () => Number(execFileSync('/bin/sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim()) || Infinity

type WorkerMessage = { type: 'batch'; frames: string[] } | { type: 'close' }
type WorkerReport = { type: 'ready'; opened: number; failed: number; firstError?: string }

/** A client process: opens one connection per auth frame it is given, from its own source address, and holds it. */
async function worker(localAddress: string, url: string) {
  const sockets: WebSocket[] = []
  process.on('message', async (message: WorkerMessage) => {
    if (message.type === 'close') {
      for (const socket of sockets) socket.terminate()
      process.exit(0)
    }
    let opened = 0
    let failed = 0
    let firstError: string | undefined
    await Promise.all(
      message.frames.map(
        (frame) =>
          new Promise<void>((resolve) => {
            const socket = new WebSocket(url, { localAddress, perMessageDeflate: false })
            const fail = (why: string) => {
              failed++
              firstError ??= why
              socket.terminate()
              resolve()
            }
            socket.once('open', () => socket.send(frame))
            socket.on('message', (data) => {
              const type = (JSON.parse(data.toString()) as { type: string }).type
              if (type === 'ready') {
                opened++
                sockets.push(socket)
                resolve()
              } else if (type === 'error') fail(data.toString().slice(0, 200))
            })
            socket.once('error', (error) => fail(error.message))
            socket.once('close', (code, reason) => fail(`closed ${code} ${reason.toString()}`))
          }),
      ),
    )
    process.send?.({ type: 'ready', opened, failed, firstError } satisfies WorkerReport)
  })
}

async function main() {
  const target = Number(args.connections)
  const perAddress = Number(args['per-address'])
  const dir = mkdtempSync(path.join(os.tmpdir(), 'strongroom-bench-sockets-'))
  const database = args.pglite
    ? undefined
    : await createTestDatabase(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test')
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    STRONGROOM_DATA_DIR: dir,
    STRONGROOM_DEV_SEED: 'false',
    LOG_LEVEL: 'info',
    DATABASE_URL: database?.url ?? '',
    NATS_URL: '',
    // Sign-ins come from a few loopback addresses only, where a real node sees one address a customer.
    STRONGROOM_RATE_LIMIT_IP_PER_MINUTE: '100000000',
    // Long enough that no connection reaches its token's end while the bench holds it.
    STRONGROOM_ACCESS_TOKEN_TTL_SECONDS: '3600',
  }
  const run = (...cmd: string[]) => JSON.parse(execFileSync(process.execPath, [cli, ...cmd], { env, encoding: 'utf8' }))
  const workers: ChildProcess[] = []
  let server: ChildProcess | undefined
  // Interrupted (Ctrl-C, a timeout): the server and the client processes go too.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const w of workers) w.kill('SIGKILL')
      server?.kill('SIGKILL')
      process.exit(130)
    })
  }
  try {
    const tenant = run('tenant', 'create', '--name', 'Bench Bank')
    const staff = run('staff', 'token', '--tenant', tenant.id, '--name', 'bench', '--role', 'agent')
    server = withRaisedLimit(process.execPath, [cli, 'start'], { env, stdio: ['ignore', 'pipe', 'inherit'] })
    const url = await new Promise<string>((resolve, reject) => {
      createInterface({ input: server?.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        const entry = JSON.parse(line)
        if (entry.msg === 'strongroom listening') resolve(entry.url)
      })
      server?.once('exit', (code) => reject(new Error(`server exited with ${code}`)))
    })
    const pid = server.pid as number
    // The server's own limit, as the kernel holds it for that process (the shell raised it before exec).
    const serverLimit = Number(/Max open files\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))?.[1])
    const limit = Math.min(serverLimit, hardLimit())
    const reachable = Math.min(target, limit - RESERVE_FDS)
    const why =
      reachable < target
        ? `open-file limit ${limit} per process (RLIMIT_NOFILE hard limit; raising it needs CAP_SYS_RESOURCE or ` +
          'limits.conf / systemd LimitNOFILE): one descriptor a connection on the server'
        : undefined
    if (why) log(`target ${target} cut to ${reachable}: ${why}`)

    const agent = new StaffClient({ baseUrl: url, credentials: new StaffToken(staff.token) })
    const devices: DeviceClient[] = []
    log(`enrolling ${args.devices} devices…`)
    for (let i = 0; i < Number(args.devices); i++) {
      const customer = await agent.createCustomer({ externalRef: `S-${i}`, displayName: `Idle ${i}` })
      const { client } = await enrolDevice({
        baseUrl: url,
        enrolmentCode: (await agent.issueEnrolmentCode(customer.id)).code,
        label: 'phone',
        WebSocket: WebSocket as never,
      })
      await agent.createConversation({ customerId: customer.id })
      devices.push(client)
    }
    const scrape = async () => {
      const metrics = await (await fetch(`${url}/metrics`)).text()
      const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? 0)
      return { rss: metric('process_resident_memory_bytes'), heap: metric('nodejs_heap_size_used_bytes') }
    }
    const settle = () => new Promise((resolve) => setTimeout(resolve, 3000))
    await settle()
    const before = await scrape()

    const streamUrl = `${url}/v1/stream`
    const wsUrl = streamUrl.replace(/^http/, 'ws')
    const addresses = Math.ceil(reachable / perAddress)
    for (let i = 0; i < addresses; i++) {
      workers.push(
        withRaisedLimit(
          process.execPath,
          [...process.execArgv, import.meta.filename, '--worker', `127.0.0.${i + 2}`, '--url', wsUrl],
          { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
        ),
      )
    }
    const started = performance.now()
    let opened = 0
    let failed = 0
    let firstError: string | undefined
    for (let done = 0; done < reachable; done += BATCH) {
      const count = Math.min(BATCH, reachable - done)
      // Fresh proofs for each batch: a proof is accepted for about a minute after it was made.
      const frames = await Promise.all(
        Array.from({ length: count }, async (_, i) => {
          const device = devices[(done + i) % devices.length] as DeviceClient
          return JSON.stringify({ type: 'auth', ...(await device.credentials.authorize('GET', streamUrl)) })
        }),
      )
      const target = workers[Math.floor(done / perAddress)] as ChildProcess
      const report = await new Promise<WorkerReport>((resolve) => {
        target.once('message', (m) => resolve(m as WorkerReport))
        target.send({ type: 'batch', frames } satisfies WorkerMessage)
      })
      opened += report.opened
      failed += report.failed
      firstError ??= report.firstError
      if (process.stderr.isTTY) process.stderr.write(`\r${opened} open, ${failed} failed`)
    }
    if (process.stderr.isTTY) process.stderr.write('\n')
    const seconds = (performance.now() - started) / 1000
    await settle()
    const after = await scrape()
    const open = Number(
      /^strongroom_stream_open_sockets (\S+)$/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1],
    )
    const perConnection = (bytes: number) => Number((bytes / opened / 1024).toFixed(2))
    log(
      `${opened} idle authenticated connections (${failed} failed${firstError ? `, first: ${firstError}` : ''}) in ` +
        `${seconds.toFixed(1)} s from ${addresses} addresses; server RSS ${Math.round(before.rss / 2 ** 20)} -> ` +
        `${Math.round(after.rss / 2 ** 20)} MB, heap ${Math.round(before.heap / 2 ** 20)} -> ${Math.round(after.heap / 2 ** 20)} MB`,
    )
    console.log(
      JSON.stringify({
        target,
        connections: opened,
        serverOpenSockets: open,
        failed,
        rssKiBPerConnection: perConnection(after.rss - before.rss),
        heapKiBPerConnection: perConnection(after.heap - before.heap),
        signInsPerSec: Math.round(opened / seconds),
        sourceAddresses: addresses,
        devices: devices.length,
        database: database ? 'postgres' : 'pglite',
        ...(why ? { limitedBy: why } : {}),
      }),
    )
  } finally {
    for (const w of workers) w.connected && w.send({ type: 'close' } satisfies WorkerMessage)
    server?.kill('SIGTERM')
    await new Promise((resolve) => (server ? server.once('exit', resolve) : resolve(undefined)))
    await database?.drop()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (args.worker) {
  await worker(args.worker, args.url as string)
} else {
  await main().then(
    () => process.exit(0),
    (error) => {
      console.error(error)
      process.exit(1)
    },
  )
}
