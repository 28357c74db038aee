/**
 * Soak: the cluster (HAProxy with TLS, three production nodes, PostgreSQL, NATS) under steady traffic for a long time,
 * to show that memory, sockets, latency and commit batches stay flat.
 *
 *   npm run soak                          one hour
 *   npm run soak -- --minutes 15          a quarter of an hour
 *   npm run soak -- --rate 2000           at that many messages/s instead of half the measured throughput
 *
 * First the cluster's throughput is measured for `--measure-seconds` (20) with every conversation sending as fast as
 * acknowledgements allow; then it runs at half that rate (as `npm run bench` measures latency at half its
 * throughput). Half of the clients go straight to the nodes with the SDK's failover list, half through HAProxy. Each
 * minute one JSON line: per node RSS (MB), open sockets and mean commit-batch size, and the minute's messages/s and
 * p99 send-to-deliver latency; at the end one line comparing the last minute's RSS with the first.
 * DATABASE_URL (a new database is made on that server and dropped after), NATS_URL.
 */
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { ClusterLoad } from './load.ts'
import { type ClusterNode, ensureDatabase, freePorts, type RunningCluster, startCluster } from './local-cluster.ts'

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '60' },
    rate: { type: 'string' },
    conversations: { type: 'string', default: '60' },
    'measure-seconds': { type: 'string', default: '20' },
  },
})
const minutes = Number(args.minutes)
const conversations = Number(args.conversations)

function log(line: string) {
  process.stderr.write(`soak: ${line}\n`)
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A node's resident memory (MB) and open sockets, from /proc. */
function processFigures(node: ClusterNode): { rssMb: number; sockets: number } {
  const pid = node.process.pid as number
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0)
  let sockets = 0
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets++
    } catch {
      // Closed while being read.
    }
  }
  return { rssMb: Math.round(rssKb / 1024), sockets }
}

/** The commit-batch histogram's running sum and count on a node. */
async function commitBatches(node: ClusterNode): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(node.metricsUrl)).text()
  const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0)
  return {
    sum: metric('strongroom_message_commit_batch_size_sum'),
    count: metric('strongroom_message_commit_batch_size_count'),
  }
}

async function main() {
  // A database of the run's own on the server DATABASE_URL names, dropped after.
  const databaseUrl = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test')
  const name = `sr_soak_${process.pid}`
  databaseUrl.pathname = `/${name}`
  await ensureDatabase(databaseUrl.href)
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'sr-soak-'))
  let cluster: RunningCluster | undefined
  let load: ClusterLoad | undefined
  try {
    const [httpsPort, n1, n2, n3, m1, m2, m3] = (await freePorts(7)) as number[]
    cluster = await startCluster({
      stateDir,
      databaseUrl: databaseUrl.href,
      natsUrl: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
      httpsPort: httpsPort as number,
      nodePorts: [n1, n2, n3] as [number, number, number],
      metricsPorts: [m1, m2, m3] as [number, number, number],
      // The load comes from one address; the devices are the SDK's, without a platform's integrity token.
      nodeEnv: {
        LOG_LEVEL: 'warn',
        STRONGROOM_RATE_LIMIT_IP_PER_MINUTE: '100000000',
        STRONGROOM_INTEGRITY_REQUIRED: 'false',
      },
    })
    log(`cluster at ${cluster.url}; enrolling ${conversations * 2} devices`)
    load = await ClusterLoad.prepare(cluster, { conversations, record: false })

    let rate = Number(args.rate ?? 0)
    if (!rate) {
      const seconds = Number(args['measure-seconds'])
      load.start('measure', 0)
      const before = load.deliveredCount
      await sleep(seconds * 1000)
      const measured = (load.deliveredCount - before) / seconds
      await load.stop()
      rate = Math.max(1, Math.round(measured / 2))
      log(`throughput ${Math.round(measured)} messages/s over ${seconds} s; soaking at half: ${rate}/s`)
    }
    const intervalMs = (1000 * conversations) / rate
    load.latencies = []
    load.start('soak', intervalMs)
    const nodes = cluster.nodes
    let batches = await Promise.all(nodes.map(commitBatches))
    let delivered = load.deliveredCount
    const firstRss: number[] = []
    let lastRss: number[] = []
    const started = Date.now()
    for (let minute = 1; minute <= minutes; minute++) {
      await sleep(started + minute * 60_000 - Date.now())
      const latencies = load.latencies.sort((a, b) => a - b)
      load.latencies = []
      const now = await Promise.all(nodes.map(commitBatches))
      const figures = nodes.map((node, i) => {
        const { rssMb, sockets } = processFigures(node)
        const count = (now[i]?.count ?? 0) - (batches[i]?.count ?? 0)
        const sum = (now[i]?.sum ?? 0) - (batches[i]?.sum ?? 0)
        return { node: node.name, rssMb, sockets, commitBatch: count ? Number((sum / count).toFixed(2)) : 0 }
      })
      batches = now
      if (minute === 1) firstRss.push(...figures.map((f) => f.rssMb))
      lastRss = figures.map((f) => f.rssMb)
      const p99 = latencies[Math.min(latencies.length - 1, Math.floor(0.99 * latencies.length))] ?? 0
      console.log(
        JSON.stringify({
          minute,
          messagesPerSec: Math.round((load.deliveredCount - delivered) / 60),
          p99Ms: Number(p99.toFixed(1)),
          nodes: figures,
        }),
      )
      delivered = load.deliveredCount
    }
    await load.stop()
    console.log(
      JSON.stringify({
        minutes,
        rate,
        conversations,
        acknowledged: load.acknowledgedCount,
        delivered: load.deliveredCount,
        rssFirstMinuteMb: firstRss,
        rssLastMinuteMb: lastRss,
      }),
    )
  } finally {
    load?.close()
    await cluster?.stop()
    const admin = new pg.Client({
      connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    })
    await admin.connect()
    await admin.query(`drop database if exists ${name} with (force)`)
    await admin.end()
    rmSync(stateDir, { recursive: true, force: true })
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  },
)
