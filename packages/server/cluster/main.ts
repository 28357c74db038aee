// `npm run cluster` (which builds first, when stale: the nodes run the compiled `strongroom`): HAProxy with TLS on https://127.0.0.1:8443 in front of three production-mode nodes on the local
// PostgreSQL and NATS, until Ctrl-C. Settings: DATABASE_URL, NATS_URL, STRONGROOM_TLS_CERT (the operator's PEM),
// STRONGROOM_CLUSTER_DIR (./strongroom-cluster).
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { startCluster } from './local-cluster.ts'

const stateDir = path.resolve(process.env.STRONGROOM_CLUSTER_DIR ?? 'strongroom-cluster')

const haproxy = spawnSync('haproxy', ['-v'], { stdio: 'ignore' })
if (haproxy.error) {
  process.stderr.write('cluster: haproxy is not installed (Debian: apt-get install haproxy)\n')
  process.exit(1)
}
try {
  const cluster = await startCluster({
    stateDir,
    databaseUrl: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/strongroom_cluster',
    natsUrl: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
    httpsPort: 8443,
    nodePorts: [8081, 8082, 8083],
    metricsPorts: [9465, 9466, 9467],
    certificate: process.env.STRONGROOM_TLS_CERT,
  })
  const relative = path.relative(process.cwd(), stateDir) || '.'
  process.stdout.write(
    [
      `Strongroom cluster at ${cluster.url} (HAProxy, TLS 1.3) in front of:`,
      ...cluster.nodes.map((node) => `  ${node.name} ${node.url}  metrics ${node.metricsUrl}`),
      `node1 runs the compliance archive member. Logs: ${relative}/logs/. Certificate: ${relative}/tls.pem`,
      '',
      'Administer it with the nodes’ environment, e.g.:',
      `  set -a; . ${relative}/node.env; set +a`,
      '  npx strongroom tenant create --name "My Bank"',
      '',
      'Ctrl-C stops HAProxy and the nodes.',
      '',
    ].join('\n'),
  )
  let stopping = false
  const stop = () => {
    if (stopping) return
    stopping = true
    process.stdout.write('cluster: stopping\n')
    cluster.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  for (const node of cluster.nodes) {
    node.process.once('exit', (code, signal) => {
      if (!stopping)
        process.stderr.write(`cluster: ${node.name} exited (${signal ?? code}); HAProxy routes around it\n`)
    })
  }
} catch (error) {
  process.stderr.write(`cluster: ${(error as Error).message}\n`)
  process.exit(1)
}
