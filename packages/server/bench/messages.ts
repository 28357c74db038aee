/**
 * Message throughput and latency through a real server process.
 *
 *   npm run bench                       PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test)
 *   npm run bench -- --pglite           the embedded database instead
 *   npm run bench -- --pairs 50 --messages 100 --nats
 *   npm run bench -- --rate 5000          measure latency at that rate instead of half the throughput
 *   npm run bench -- --cpu-prof /tmp/prof   write the server's CPU profile there (open it in Chrome DevTools)
 *   npm run bench -- --secure            the same pairs end-to-end encrypted (MLS from both sides), with the archive
 *                                        member on a node of its own writing to the real archive (NATS between them)
 *
 * N device pairs each share a conversation; one device of each pair sends M messages of 256 bytes over its
 * WebSocket, the other receives them. Phase 1 sends as fast as acknowledgements allow (throughput); phase 2 sends at
 * half that rate (latency). The plain path is driven by a lean load generator (raw frames over `ws`, see
 * raw-stream.ts) so that the client is not what is measured; its CPU is printed. The secure path encrypts and decrypts
 * in the client with the SDK, as an app does: its CPU is printed too. Each run ends with the bare relay
 * (../shared/bench/ws-relay.mjs) on the same load, for the ratio. Prints the figures, and as its last line one JSON
 * object.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { enrolDevice, type MemberClient, StaffClient, StaffToken } from '@strongroom/sdk'
import pg from 'pg'
import WebSocket from 'ws'
import { createTestDatabase } from '../src/testing/harness.ts'
import { type RawPair, RawStream, rawPhase } from './raw-stream.ts'
import { runRelay } from './relay.ts'
import { type SecureDeliveries, type SecurePair, securePair, securePhase } from './secure-load.ts'

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
    secure: { type: 'boolean', default: false },
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
  // Two processes (the API node and the archive member's) need a bus between them: NATS.
  const nats = args.nats || args.secure
  if (args.secure && !databaseUrl) throw new Error('--secure needs PostgreSQL: two nodes share the database')
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    STRONGROOM_DATA_DIR: dir,
    STRONGROOM_DEV_SEED: 'false',
    LOG_LEVEL: 'info',
    DATABASE_URL: databaseUrl ?? '',
    NATS_URL: nats ? (process.env.NATS_URL ?? 'nats://127.0.0.1:4222') : '',
    // The per-socket frame budget still runs on every frame; set above the load so that none is refused.
    STRONGROOM_STREAM_FRAMES_PER_SECOND: '100000',
  }
  const run = (...cmd: string[]) => JSON.parse(execFileSync(process.execPath, [cli, ...cmd], { env, encoding: 'utf8' }))
  const nodes: ChildProcess[] = []
  const startNode = async (extra: NodeJS.ProcessEnv, flags: string[]) => {
    const node = spawn(process.execPath, [...flags, cli, 'start'], {
      env: { ...env, ...extra },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    nodes.push(node)
    const url = await new Promise<string>((resolve, reject) => {
      createInterface({ input: node.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        const entry = JSON.parse(line)
        if (entry.msg === 'strongroom listening') resolve(entry.url)
      })
      node.once('exit', (code) => reject(new Error(`server exited with ${code}`)))
    })
    return { url, pid: node.pid as number }
  }
  try {
    const tenant = run('tenant', 'create', '--name', 'Bench Bank')
    const staff = run('staff', 'token', '--tenant', tenant.id, '--name', 'bench', '--role', 'agent')
    const profile = [
      ...(process.env.BENCH_SERVER_FLAGS?.split(' ') ?? []),
      ...(args['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${args['cpu-prof']}`] : []),
    ]
    // With --secure the archive member runs on a node of its own (as in production), so its CPU is measured apart.
    const archiveNode = args.secure ? await startNode({ STRONGROOM_ARCHIVE_MEMBER: 'true' }, profile) : undefined
    const { url, pid } = await startNode(args.secure ? { STRONGROOM_ARCHIVE_MEMBER: 'false' } : {}, profile)
    log(
      `server ${url} (pid ${pid}) on ${databaseUrl ? 'PostgreSQL' : 'PGlite'}${nats ? ' + NATS' : ''}` +
        (archiveNode ? `; archive member on ${archiveNode.url} (pid ${archiveNode.pid})` : ''),
    )

    const agent = new StaffClient({ baseUrl: url, credentials: new StaffToken(staff.token) })
    log(`enrolling ${pairs * 2} devices…`)
    const devices: { a: MemberClient; b: MemberClient; bId: string; customerId: string }[] = []
    const rawPairs: RawPair[] = []
    for (let i = 0; i < pairs; i++) {
      const customer = await agent.createCustomer({ externalRef: `B-${i}`, displayName: `Bench ${i}` })
      const enrol = async (label: string) =>
        enrolDevice({
          baseUrl: url,
          enrolmentCode: (await agent.issueEnrolmentCode(customer.id)).code,
          label,
          WebSocket: WebSocket as never,
        })
      const [a, b] = [await enrol('sender'), await enrol('receiver')]
      const conversation = await agent.createConversation({ customerId: customer.id })
      devices.push({ a: a.client, b: b.client, bId: b.device.id, customerId: customer.id })
      const [sender, receiver] = [await RawStream.open(a.client), await RawStream.open(b.client)]
      rawPairs.push({ sender, receiver, conversationId: conversation.id })
    }

    const cpuOf = (processId: number) => {
      const fields = readFileSync(`/proc/${processId}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
      return (Number(fields[11]) + Number(fields[12])) / 100
    }
    const us = (seconds: number, messages: number) => Math.round((seconds * 1e6) / messages)
    // PostgreSQL's CPU for the benchmark's database: its backends' (on this machine), read per process id.
    const admin = databaseUrl ? new pg.Client({ connectionString: databaseUrl }) : undefined
    admin?.on('error', () => {}) // its backend is ended when the database is dropped
    await admin?.connect()
    const backendsCpu = async (): Promise<Map<number, number>> => {
      const cpu = new Map<number, number>()
      if (!admin) return cpu
      const { rows } = await admin.query<{ pid: number }>(
        'select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
      )
      for (const { pid: backend } of rows) {
        try {
          cpu.set(backend, cpuOf(backend))
        } catch {} // ended meanwhile, or the server is on another machine
      }
      return cpu
    }
    const quantiles = (latencies: number[]) => {
      const sorted = [...latencies].sort((a, b) => a - b)
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0
      return { p50Ms: Number(at(0.5).toFixed(2)), p99Ms: Number(at(0.99).toFixed(2)) }
    }

    /** Runs one phase and measures it: delivered msgs/s, latency, server (and archive node) and client CPU. */
    async function measure(name: string, total: number, drive: () => Promise<{ latencies: number[]; end: number }>) {
      const cpuBefore = cpuOf(pid)
      const databaseBefore = await backendsCpu()
      const clientCpuBefore = process.cpuUsage()
      const clientLoop = monitorEventLoopDelay({ resolution: 1 })
      clientLoop.enable()
      const started = performance.now()
      const { latencies, end } = await drive()
      const seconds = (end - started) / 1000
      const serverCpu = cpuOf(pid) - cpuBefore
      let databaseCpu = 0
      for (const [backend, cpu] of await backendsCpu()) databaseCpu += cpu - (databaseBefore.get(backend) ?? 0)
      const clientCpu = process.cpuUsage(clientCpuBefore)
      clientLoop.disable()
      const result = {
        msgsPerSec: Math.round(total / seconds),
        ...quantiles(latencies),
        cpuSec: Number(serverCpu.toFixed(2)),
        serverCpuUsPerMsg: us(serverCpu, total),
        databaseCpuUsPerMsg: admin ? us(databaseCpu, total) : null,
        clientCpuUsPerMsg: us((clientCpu.user + clientCpu.system) / 1e6, total),
      }
      log(
        `${name}: ${total} messages in ${seconds.toFixed(2)} s = ${result.msgsPerSec} msgs/s delivered; ` +
          `latency p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms; server CPU ${result.cpuSec} s ` +
          `(${result.serverCpuUsPerMsg} µs/msg), PostgreSQL ${result.databaseCpuUsPerMsg ?? '-'} µs/msg, load generator CPU ${result.clientCpuUsPerMsg} µs/msg, ` +
          `its event-loop delay p99 ${(clientLoop.percentile(99) / 1e6).toFixed(1)} ms`,
      )
      return result
    }

    const plain = (name: string, messages: number, ratePerSec?: number) =>
      measure(name, messages * pairs, async () => {
        const { latencies, lastDelivery } = await rawPhase(rawPairs, {
          messages,
          window,
          size,
          ratePerSec,
          tag: name.replace(/[^A-Za-z0-9]/g, ''),
        })
        return { latencies, end: lastDelivery }
      })

    // Reading the metrics resets the server's event-loop delay histogram, so that it covers the phase measured last.
    const scrape = async (at = url) => (await fetch(`${at}/metrics`)).text()
    const metric = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0)
    await plain('plain warm-up', Math.max(5, Math.floor(perSender / 10)))
    const throughput = await plain('plain throughput', perSender)
    await scrape()
    const latencyRate = args.rate ? Number(args.rate) : throughput.msgsPerSec / 2
    const latency = args.secure
      ? undefined
      : await plain(`plain at ${Math.round(latencyRate)} msgs/s`, perSender, latencyRate)
    const metrics = await scrape()
    const batches = metric(metrics, 'strongroom_message_commit_batch_size_count')
    const slowCommits = batches - metric(metrics, 'strongroom_message_commit_duration_seconds_bucket\\{le="0.025"\\}')
    log(
      `group commit: ${batches} transactions, ${(metric(metrics, 'strongroom_message_commit_batch_size_sum') / batches).toFixed(1)} ` +
        `messages each on average, ${((1000 * metric(metrics, 'strongroom_message_commit_duration_seconds_sum')) / batches).toFixed(2)} ms each, ` +
        `${slowCommits} over 25 ms; server event-loop delay in the last phase: p99 ` +
        `${(1000 * metric(metrics, 'nodejs_eventloop_lag_p99_seconds')).toFixed(1)} ms, max ` +
        `${(1000 * metric(metrics, 'nodejs_eventloop_lag_max_seconds')).toFixed(1)} ms`,
    )
    for (const p of rawPairs) {
      p.sender.close()
      p.receiver.close()
    }

    let secure: Record<string, number> | undefined
    if (archiveNode) secure = await secureRun(archiveNode.url, archiveNode.pid)

    /** The secure phases: throughput, then half that rate with the archive's lag from its node's histogram. */
    async function secureRun(archiveUrl: string, archivePid: number): Promise<Record<string, number>> {
      log(`making ${pairs} secure conversations (MLS groups with the archive)…`)
      const deliveries: SecureDeliveries = { latencies: [], delivered: 0, lastDelivery: 0 }
      const securePairs: SecurePair[] = []
      for (const [i, d] of devices.entries()) {
        const conversation = await agent.createConversation({ customerId: d.customerId })
        // The plain conversation's messages are not read again by the secure streams.
        const plainId = (rawPairs[i] as RawPair).conversationId
        const cursors = { [plainId]: (await agent.getConversation(plainId)).lastSeq }
        securePairs.push(await securePair(d.a, d.b, conversation.id, d.bId, deliveries, cursors))
      }
      const archiveLag = async () => histogram(await scrape(archiveUrl), 'strongroom_archive_lag_seconds')
      const phase = async (name: string, messages: number, ratePerSec?: number) => {
        const total = messages * pairs
        const lagBefore = await archiveLag()
        deliveries.latencies = []
        deliveries.delivered = 0
        const archiveBefore = cpuOf(archivePid)
        const result = await measure(name, total, async () => {
          await securePhase(securePairs, { messages, window, size, ratePerSec })
          while (deliveries.delivered < total) await new Promise((resolve) => setTimeout(resolve, 10))
          return { latencies: deliveries.latencies, end: deliveries.lastDelivery }
        })
        // The archive member's CPU counts until it has stored every message of the phase.
        let lag = await archiveLag()
        while (lag.count - lagBefore.count < total) {
          await new Promise((resolve) => setTimeout(resolve, 100))
          lag = await archiveLag()
        }
        const archiveCpu = cpuOf(archivePid) - archiveBefore
        const window_ = lag.minus(lagBefore)
        const lagMs = { p50: window_.quantile(0.5) * 1000, p99: window_.quantile(0.99) * 1000 }
        log(
          `${name}: archive member stored all ${total} (${us(archiveCpu, total)} µs of its CPU a message); ` +
            `lag commit to archived p50 ${lagMs.p50.toFixed(0)} ms, p99 ${lagMs.p99.toFixed(0)} ms`,
        )
        return { ...result, archiveCpuUsPerMsg: us(archiveCpu, total), lagMs }
      }
      await phase('secure warm-up', Math.max(5, Math.floor(perSender / 10)))
      const full = await phase('secure throughput', perSender)
      const halfRate = full.msgsPerSec / 2
      const half = await phase(`secure at ${Math.round(halfRate)} msgs/s`, perSender, halfRate)
      for (const p of securePairs) {
        p.senderStream.close()
        p.receiverStream.close()
      }
      return {
        secureMsgsPerSec: full.msgsPerSec,
        secureToPlain: Number((full.msgsPerSec / throughput.msgsPerSec).toFixed(2)),
        secureServerCpuUsPerMsg: full.serverCpuUsPerMsg,
        secureClientCpuUsPerMsg: full.clientCpuUsPerMsg,
        archiveCpuUsPerMsg: full.archiveCpuUsPerMsg,
        archiveLagP50Ms: Math.round(half.lagMs.p50),
        archiveLagP99Ms: Math.round(half.lagMs.p99),
        archiveLagAtThroughputP99Ms: Math.round(full.lagMs.p99),
        secureHalfRate: Math.round(halfRate),
        secureP50Ms: half.p50Ms,
        secureP99Ms: half.p99Ms,
        secureHalfRateServerCpuUsPerMsg: half.serverCpuUsPerMsg,
      }
    }

    await admin?.end()
    const rssMb = Math.round(
      Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024,
    )
    log(`server peak RSS ${rssMb} MB`)
    for (const node of nodes) node.kill('SIGTERM')
    await Promise.all(nodes.map(exited))
    nodes.length = 0
    log('the bare relay on the same load…')
    const relay = await runRelay({ pairs, messages: perSender, window, size })
    if (relay) {
      log(
        `bare relay: ${relay.msgsPerSec} msgs/s, p50 ${relay.p50Ms} ms, p99 ${relay.p99Ms} ms, ${relay.serverCpuUsPerMsg} µs/msg`,
      )
    }
    console.log(
      JSON.stringify({
        msgsPerSec: throughput.msgsPerSec,
        ...(latency ? { p50Ms: latency.p50Ms, p99Ms: latency.p99Ms, latencyRate: Math.round(latencyRate) } : {}),
        serverCpuUsPerMsg: throughput.serverCpuUsPerMsg,
        ...(latency ? { halfRateServerCpuUsPerMsg: latency.serverCpuUsPerMsg } : {}),
        databaseCpuUsPerMsg: throughput.databaseCpuUsPerMsg,
        ...(latency ? { halfRateDatabaseCpuUsPerMsg: latency.databaseCpuUsPerMsg } : {}),
        clientCpuUsPerMsg: throughput.clientCpuUsPerMsg,
        cpuSec: Number((throughput.cpuSec + (latency?.cpuSec ?? 0)).toFixed(2)),
        rssMb,
        throughputP99Ms: throughput.p99Ms,
        ...(secure ?? {}),
        relayMsgsPerSec: relay?.msgsPerSec ?? null,
        relayServerCpuUsPerMsg: relay?.serverCpuUsPerMsg ?? null,
        plainToRelay: relay ? Number((throughput.msgsPerSec / relay.msgsPerSec).toFixed(2)) : null,
        ...(secure && relay
          ? { secureToRelay: Number(((secure.secureMsgsPerSec as number) / relay.msgsPerSec).toFixed(2)) }
          : {}),
        pairs,
        messagesPerSender: perSender,
        database: databaseUrl ? 'postgres' : 'pglite',
        date: new Date().toISOString().slice(0, 10),
      }),
    )
  } finally {
    for (const node of nodes) node.kill('SIGTERM')
    await Promise.all(nodes.map(exited))
    await database?.drop()
    rmSync(dir, { recursive: true, force: true })
  }
}

function exited(node: ChildProcess): Promise<unknown> {
  if (node.exitCode !== null || node.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => node.once('exit', resolve))
}

/** A Prometheus histogram as scraped: cumulative counts per upper bound, and the quantiles of a difference of two. */
function histogram(text: string, name: string) {
  const buckets: [number, number][] = []
  for (const match of text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`, 'gm'))) {
    buckets.push([match[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(match[1]), Number(match[2])])
  }
  return of(buckets)
  function of(cumulative: [number, number][]) {
    const count = cumulative.at(-1)?.[1] ?? 0
    return {
      count,
      minus: (earlier: { buckets: [number, number][] }) =>
        of(cumulative.map(([le, n], i) => [le, n - (earlier.buckets[i]?.[1] ?? 0)])),
      buckets: cumulative,
      /** Linear within the bucket the quantile falls in (what Prometheus's histogram_quantile does). */
      quantile(q: number): number {
        const rank = q * count
        let lower = 0
        let below = 0
        for (const [le, n] of cumulative) {
          if (n >= rank) {
            if (!Number.isFinite(le)) return lower
            return lower + ((le - lower) * (rank - below)) / Math.max(1, n - below)
          }
          lower = le
          below = n
        }
        return lower
      },
    }
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  },
)
