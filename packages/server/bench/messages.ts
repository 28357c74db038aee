/**
 * Message throughput and latency through a real server process.
 *
 *   npm run bench                       PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test)
 *   npm run bench -- --pglite           the embedded database instead
 *   npm run bench -- --pairs 50 --messages 100 --nats
 *   npm run bench -- --rate 5000          measure latency at that rate instead of half the throughput
 *   npm run bench -- --cpu-prof /tmp/prof   write the server's CPU profile there (open it in Chrome DevTools)
 *
 * N device pairs each share a conversation; one device of each pair sends M messages of 256 bytes over its
 * WebSocket, the other receives them. Phase 1 sends as fast as acknowledgements allow (throughput); phase 2 sends at
 * half that rate (latency). Prints the figures, and as its last line one JSON object.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { base64ToBytes, enrolDevice, type MessageStream, StaffToken, StrongroomClient } from '@strongroom/sdk'
import WebSocket from 'ws'
import { createTestDatabase } from '../src/testing/harness.ts'

const { values: args } = parseArgs({
  options: {
    pairs: { type: 'string', default: '100' },
    messages: { type: 'string', default: '200' },
    size: { type: 'string', default: '256' },
    window: { type: 'string', default: '16' },
    pglite: { type: 'boolean', default: false },
    nats: { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    rate: { type: 'string' },
  },
})
const pairs = Number(args.pairs)
const perSender = Number(args.messages)
const size = Number(args.size)
const window = Number(args.window)
const cli = path.resolve(import.meta.dirname, '../bin/strongroom.js')

function log(line: string) {
  process.stderr.write(`${line}\n`)
}

async function main() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'strongroom-bench-'))
  const database = args.pglite
    ? undefined
    : await createTestDatabase(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test')
  const databaseUrl = database?.url
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    STRONGROOM_DATA_DIR: dir,
    STRONGROOM_DEV_SEED: 'false',
    LOG_LEVEL: 'info',
    DATABASE_URL: databaseUrl ?? '',
    NATS_URL: args.nats ? (process.env.NATS_URL ?? 'nats://127.0.0.1:4222') : '',
  }
  const run = (...cmd: string[]) => JSON.parse(execFileSync(process.execPath, [cli, ...cmd], { env, encoding: 'utf8' }))
  let server: ChildProcess | undefined
  try {
    const tenant = run('tenant', 'create', '--name', 'Bench Bank')
    const staff = run('staff', 'token', '--tenant', tenant.id, '--name', 'bench', '--role', 'agent')
    const profile = [
      ...(process.env.BENCH_SERVER_FLAGS?.split(' ') ?? []),
      ...(args['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${args['cpu-prof']}`] : []),
    ]
    server = spawn(process.execPath, [...profile, cli, 'start'], { env, stdio: ['ignore', 'pipe', 'inherit'] })
    const url = await new Promise<string>((resolve, reject) => {
      createInterface({ input: server?.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        const entry = JSON.parse(line)
        if (entry.msg === 'strongroom listening') resolve(entry.url)
      })
      server?.once('exit', (code) => reject(new Error(`server exited with ${code}`)))
    })
    const pid = server.pid as number
    log(`server ${url} (pid ${pid}) on ${databaseUrl ? 'PostgreSQL' : 'PGlite'}${args.nats ? ' + NATS' : ''}`)

    const agent = new StrongroomClient({ baseUrl: url, credentials: new StaffToken(staff.token) })
    log(`enrolling ${pairs * 2} devices…`)
    const streams: { sender: MessageStream; receiver: MessageStream; conversationId: string }[] = []
    const latencies: number[] = []
    let delivered = 0
    let lastDelivery = 0
    for (let i = 0; i < pairs; i++) {
      const customer = await agent.createCustomer({ externalRef: `B-${i}`, displayName: `Bench ${i}` })
      const enrol = async (label: string) =>
        (
          await enrolDevice({
            baseUrl: url,
            enrolmentCode: (await agent.issueEnrolmentCode(customer.id)).code,
            label,
            WebSocket: WebSocket as never,
          })
        ).client
      const [a, b] = [await enrol('sender'), await enrol('receiver')]
      const conversation = await agent.createConversation({ customerId: customer.id })
      const receiver = b.stream({
        onMessage: (message) => {
          const sentAt = new DataView(base64ToBytes(message.ciphertext).buffer).getFloat64(0)
          latencies.push(performance.timeOrigin + performance.now() - sentAt)
          delivered++
          lastDelivery = performance.now()
        },
      })
      streams.push({ sender: a.stream(), receiver, conversationId: conversation.id })
    }
    await Promise.all(streams.flatMap((s) => [s.sender.ready(), s.receiver.ready()]))

    const payload = () => {
      const bytes = new Uint8Array(size)
      new DataView(bytes.buffer).setFloat64(0, performance.timeOrigin + performance.now())
      return bytes
    }
    const cpu = () => {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
      return (Number(fields[11]) + Number(fields[12])) / 100
    }

    /** Each sender keeps `window` sends in flight; with a rate, sends are paced to it across all senders. */
    async function phase(name: string, messages: number, ratePerSec?: number) {
      delivered = 0
      latencies.length = 0
      const total = messages * pairs
      const cpuBefore = cpu()
      const clientCpuBefore = process.cpuUsage()
      const clientLoop = monitorEventLoopDelay({ resolution: 1 })
      clientLoop.enable()
      const started = performance.now()
      const interval = ratePerSec ? (1000 * pairs) / ratePerSec : 0
      await Promise.all(
        streams.map(async ({ sender, conversationId }, index) => {
          let next = started + (interval * index) / pairs
          let sent = 0
          const inFlight = new Set<Promise<unknown>>()
          while (sent < messages) {
            if (interval) {
              const wait = next - performance.now()
              if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
              next += interval
            }
            const send = sender.send(conversationId, { contentType: 'application/octet-stream', ciphertext: payload() })
            inFlight.add(send)
            send.finally(() => inFlight.delete(send))
            sent++
            if (inFlight.size >= window) await Promise.race(inFlight)
          }
          await Promise.all(inFlight)
        }),
      )
      while (delivered < total) await new Promise((resolve) => setTimeout(resolve, 10))
      const seconds = (lastDelivery - started) / 1000
      const sorted = [...latencies].sort((a, b) => a - b)
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0
      const result = {
        msgsPerSec: Math.round(total / seconds),
        p50Ms: Number(at(0.5).toFixed(2)),
        p99Ms: Number(at(0.99).toFixed(2)),
        cpuSec: Number((cpu() - cpuBefore).toFixed(2)),
      }
      const clientCpu = process.cpuUsage(clientCpuBefore)
      clientLoop.disable()
      log(
        `${name}: ${total} messages in ${seconds.toFixed(2)} s = ${result.msgsPerSec} msgs/s delivered; ` +
          `latency p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms; server CPU ${result.cpuSec} s, ` +
          `load generator CPU ${((clientCpu.user + clientCpu.system) / 1e6).toFixed(2)} s, ` +
          `its event-loop delay p99 ${(clientLoop.percentile(99) / 1e6).toFixed(1)} ms`,
      )
      return result
    }

    // Reading the metrics resets the server's event-loop delay histogram, so that it covers the phase measured last.
    const scrape = async () => (await fetch(`${url}/metrics`)).text()
    await phase('warm-up', Math.max(5, Math.floor(perSender / 10)))
    const throughput = await phase('throughput', perSender)
    await scrape()
    const latencyRate = args.rate ? Number(args.rate) : throughput.msgsPerSec / 2
    const latency = await phase(`latency at ${Math.round(latencyRate)} msgs/s`, perSender, latencyRate)
    const rssMb = Math.round(
      Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024,
    )
    log(`server peak RSS ${rssMb} MB`)
    const metrics = await scrape()
    const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? 0)
    const batches = metric('strongroom_message_commit_batch_size_count')
    const slowCommits = batches - metric('strongroom_message_commit_duration_seconds_bucket\\{le="0.025"\\}')
    log(
      `group commit: ${batches} transactions, ${(metric('strongroom_message_commit_batch_size_sum') / batches).toFixed(1)} ` +
        `messages each on average, ${((1000 * metric('strongroom_message_commit_duration_seconds_sum')) / batches).toFixed(2)} ms each, ` +
        `${slowCommits} over 25 ms; server event-loop delay in the latency phase: p99 ` +
        `${(1000 * metric('nodejs_eventloop_lag_p99_seconds')).toFixed(1)} ms, max ` +
        `${(1000 * metric('nodejs_eventloop_lag_max_seconds')).toFixed(1)} ms`,
    )
    for (const s of streams) {
      s.sender.close()
      s.receiver.close()
    }
    console.log(
      JSON.stringify({
        msgsPerSec: throughput.msgsPerSec,
        p50Ms: latency.p50Ms,
        p99Ms: latency.p99Ms,
        cpuSec: Number((throughput.cpuSec + latency.cpuSec).toFixed(2)),
        rssMb,
        throughputP99Ms: throughput.p99Ms,
        latencyRate: Math.round(latencyRate),
        pairs,
        messagesPerSender: perSender,
        database: databaseUrl ? 'postgres' : 'pglite',
      }),
    )
  } finally {
    server?.kill('SIGTERM')
    await new Promise((resolve) => (server ? server.once('exit', resolve) : resolve(undefined)))
    await database?.drop()
    rmSync(dir, { recursive: true, force: true })
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  },
)
