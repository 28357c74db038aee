import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import net from 'node:net'
import path from 'node:path'
import { parseEnv } from 'node:util'
import pg from 'pg'
import { operator } from '../src/audit/events.ts'
import { loadConfig } from '../src/platform/config.ts'
import { openDatabase } from '../src/platform/db/database.ts'
import type { Role } from '../src/platform/http/roles.ts'
import { Keyring } from '../src/platform/keyring/keyring.ts'
import { LocalKeyFileProvider } from '../src/platform/keyring/local-key-file.ts'
import { createStaff, issueStaffToken } from '../src/tenancy/staff.ts'
import { createTenant } from '../src/tenancy/tenants.ts'

const repository = path.resolve(import.meta.dirname, '../../..')
const cli = path.join(repository, 'packages/server/bin/strongroom.js')
/** The files a bank copies: the cluster runs from them, not from copies of their contents. */
export const deployDir = path.join(repository, 'deploy')

export interface ClusterOptions {
  /** Where the certificate, the key files and the logs live (made 0700). */
  stateDir: string
  databaseUrl: string
  natsUrl: string
  /** HAProxy's HTTPS port on 127.0.0.1. */
  httpsPort: number
  /** One port per node, and one per node for its /metrics listener. */
  nodePorts: readonly [number, number, number]
  metricsPorts: readonly [number, number, number]
  /** PEM file with a certificate chain and its key (the operator's); a local one is made when absent. */
  certificate?: string | undefined
  /** More environment for every node (tests shorten timers with it). */
  nodeEnv?: NodeJS.ProcessEnv
  /** Node's arguments that run `strongroom`: the compiled command by default; tests run it from the sources. */
  strongroom?: readonly string[]
}

export interface ClusterNode {
  readonly name: string
  readonly url: string
  readonly metricsUrl: string
  readonly process: ChildProcess
}

export interface RunningCluster {
  /** HAProxy's URL, e.g. https://127.0.0.1:8443 */
  readonly url: string
  /** The certificate clients must trust (the local one, or the operator's chain). */
  readonly caCertificate: string
  readonly nodes: readonly ClusterNode[]
  /** The environment `strongroom` commands run with to administer this cluster. */
  readonly env: NodeJS.ProcessEnv
  /** Runs a `strongroom` command against the cluster's database and keys; its JSON output. */
  run(args: string[]): unknown
  /** Starts node `index` (0-2) again with its settings, after it was killed or drained; `nodes` names the new one. */
  restartNode(index: number): Promise<ClusterNode>
  /** Stops HAProxy and the nodes (each node drains as on SIGTERM). */
  stop(): Promise<void>
}

/** Runs the `strongroom` command with an environment; stdout parsed as JSON, stderr's one line as the error. */
function strongroom(command: readonly string[], env: NodeJS.ProcessEnv, args: string[]): unknown {
  try {
    return JSON.parse(execFileSync(process.execPath, [...command, ...args], { env, encoding: 'utf8', stdio: 'pipe' }))
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim()
    throw new Error(`strongroom ${args.join(' ')} failed: ${stderr || (error as Error).message}`)
  }
}

/**
 * A self-signed certificate (P-256) for these names, in `file.crt` and `file.key`, and both in `file` as HAProxy reads
 * them. For this machine only; a bank uses its own.
 */
/** Ports free on the loopback address now, one for each part of a cluster. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve) => {
          const server = net.createServer()
          server.listen(0, '127.0.0.1', () => resolve(server))
        }),
    ),
  )
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port)
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
  return ports
}

export function makeLocalCertificate(file: string, subjectAltName = 'DNS:localhost,IP:127.0.0.1'): void {
  const key = `${file}.key`
  const certificate = `${file}.crt`
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '825',
      '-subj',
      '/CN=Strongroom local cluster',
      '-addext',
      `subjectAltName=${subjectAltName}`,
      '-keyout',
      key,
      '-out',
      certificate,
    ],
    { stdio: 'pipe' },
  )
  writeFileSync(file, readFileSync(certificate, 'utf8') + readFileSync(key, 'utf8'), { mode: 0o600 })
}

/** Makes the database when it does not exist yet (the user must be allowed to). */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl)
  const name = decodeURIComponent(url.pathname.slice(1))
  const admin = new URL(databaseUrl)
  admin.pathname = '/postgres'
  const client = new pg.Client({ connectionString: admin.href })
  await client.connect()
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name])
    if (found.rowCount === 0) await client.query(`create database ${pg.escapeIdentifier(name)}`)
  } finally {
    await client.end()
  }
}

/**
 * The node environment from deploy/strongroom.env, with the values marked (local) there pointed at this machine:
 * the database, NATS, the key files under the state directory, and the URL HAProxy serves.
 */
export function nodeEnvironment(options: ClusterOptions): NodeJS.ProcessEnv {
  const fromFile = parseEnv(readFileSync(path.join(deployDir, 'strongroom.env'), 'utf8'))
  const { NATS_TLS_CA_FILE: _localNatsHasNoTls, ...shared } = fromFile
  const publicUrl = `https://127.0.0.1:${options.httpsPort}`
  return {
    PATH: process.env.PATH,
    ...shared,
    HOST: '127.0.0.1',
    DATABASE_URL: options.databaseUrl,
    NATS_URL: options.natsUrl,
    STRONGROOM_KEY_FILE: path.join(options.stateDir, 'keys', 'keyring.json'),
    STRONGROOM_ARCHIVE_KEY_FILE: path.join(options.stateDir, 'keys', 'archive-keyring.json'),
    STRONGROOM_PUBLIC_URL: publicUrl,
    STRONGROOM_RP_ID: 'localhost',
    STRONGROOM_RP_ORIGINS: `https://localhost:${options.httpsPort}`,
    STRONGROOM_METRICS_HOST: '127.0.0.1',
    ...options.nodeEnv,
  }
}

/** Starts a node (`strongroom start`) and waits until it answers /readyz; its output goes to its log file. */
export async function startNode(
  command: readonly string[],
  name: string,
  env: NodeJS.ProcessEnv,
  logFile: string,
  children: ChildProcess[],
  cwd?: string,
): Promise<ClusterNode> {
  const child = spawn(process.execPath, [...command, 'start'], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  const log = createWriteStream(logFile, { flags: 'a', mode: 0o600 })
  child.stdout?.pipe(log, { end: false })
  child.stderr?.pipe(log, { end: false })
  let output = ''
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-600)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const url = `http://${env.HOST}:${env.PORT}`
  const deadline = Date.now() + 180_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}: ${output.trim()}`)
    const status = await fetch(`${url}/readyz`).then(
      (response) => response.status,
      () => 0,
    )
    if (status === 200) break
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${name} was not ready within 180 s (/readyz ${status}): ${output.trim()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  return {
    name,
    url,
    metricsUrl: `http://${env.STRONGROOM_METRICS_HOST}:${env.STRONGROOM_METRICS_PORT}/metrics`,
    process: child,
  }
}

/** GET over TLS trusting `ca`; the status, or 0 when nothing answered in time. */
export function httpsStatus(url: string, ca: string, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve) => {
    const request = https.get(url, { ca, timeout: timeoutMs, agent: false }, (response) => {
      response.resume()
      resolve(response.statusCode ?? 0)
    })
    request.on('timeout', () => request.destroy())
    request.on('error', () => resolve(0))
  })
}

/** Stops a process with a signal (SIGKILL after 20 s) and waits for it to exit. */
export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill(signal)
  const force = setTimeout(() => child.kill('SIGKILL'), 20_000)
  await exited
  clearTimeout(force)
}

/**
 * HAProxy (deploy/haproxy.cfg) terminating TLS on 127.0.0.1 in front of three production-mode nodes on one PostgreSQL
 * and one NATS: what the README's deployment section describes, on one machine. The key files are made on the first
 * run with `strongroom keys init` (and `--archive`), the nodes migrate the database as they start (under a lock), and
 * the first node runs the compliance archive member.
 */
export async function startCluster(options: ClusterOptions): Promise<RunningCluster> {
  mkdirSync(path.join(options.stateDir, 'logs'), { recursive: true, mode: 0o700 })
  const certificate = options.certificate ?? path.join(options.stateDir, 'tls.pem')
  if (!options.certificate && !existsSync(certificate)) makeLocalCertificate(certificate)
  const caCertificate = (
    readFileSync(certificate, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  ).join('\n')

  const env = nodeEnvironment(options)
  // What `strongroom` commands need to administer this cluster, for `set -a; . node.env`.
  const { PATH: _path, ...settings } = env
  const quoted = Object.entries(settings).map(([key, value]) => `${key}='${String(value).replaceAll("'", `'\\''`)}'`)
  writeFileSync(path.join(options.stateDir, 'node.env'), `${quoted.join('\n')}\n`, { mode: 0o600 })
  await ensureDatabase(options.databaseUrl)
  const command = options.strongroom ?? [cli]
  if (!existsSync(env.STRONGROOM_KEY_FILE as string)) strongroom(command, env, ['keys', 'init'])
  if (!existsSync(env.STRONGROOM_ARCHIVE_KEY_FILE as string)) strongroom(command, env, ['keys', 'init', '--archive'])

  const children: ChildProcess[] = []
  let haproxy: ChildProcess | undefined
  const stop = async () => {
    if (haproxy) await stopProcess(haproxy, 'SIGUSR1')
    await Promise.all(children.map((child) => stopProcess(child, 'SIGTERM')))
  }
  const launch = (i: number) =>
    startNode(
      command,
      `node${i + 1}`,
      {
        ...env,
        PORT: String(options.nodePorts[i]),
        STRONGROOM_METRICS_PORT: String(options.metricsPorts[i]),
        // One node reads every secure conversation for the compliance archive.
        STRONGROOM_ARCHIVE_MEMBER: i === 0 ? 'true' : 'false',
      },
      path.join(options.stateDir, 'logs', `node${i + 1}.log`),
      children,
    )
  try {
    const started = await Promise.all(options.nodePorts.map((_, i) => launch(i)))
    const haproxyEnv = {
      PATH: process.env.PATH,
      STRONGROOM_TLS_BIND: `127.0.0.1:${options.httpsPort}`,
      STRONGROOM_TLS_CERT: certificate,
      STRONGROOM_NODE_1: `127.0.0.1:${options.nodePorts[0]}`,
      STRONGROOM_NODE_2: `127.0.0.1:${options.nodePorts[1]}`,
      STRONGROOM_NODE_3: `127.0.0.1:${options.nodePorts[2]}`,
    }
    const haproxyLog = createWriteStream(path.join(options.stateDir, 'logs', 'haproxy.log'), { flags: 'a' })
    haproxy = spawn('haproxy', ['-db', '-f', path.join(deployDir, 'haproxy.cfg')], {
      env: haproxyEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    haproxy.stdout?.pipe(haproxyLog, { end: false })
    haproxy.stderr?.pipe(haproxyLog, { end: false })
    const url = `https://127.0.0.1:${options.httpsPort}`
    const deadline = Date.now() + 15_000
    while ((await httpsStatus(`${url}/readyz`, caCertificate)) !== 200) {
      if (haproxy.exitCode !== null) {
        throw new Error(`haproxy exited with ${haproxy.exitCode}; see ${path.join(options.stateDir, 'logs')}`)
      }
      if (Date.now() > deadline) throw new Error(`${url}/readyz did not answer 200 within 15 s`)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    return {
      url,
      caCertificate,
      nodes: started,
      env,
      run: (args) => strongroom(command, env, args),
      async restartNode(index) {
        const node = await launch(index)
        started[index] = node
        return node
      },
      stop,
    }
  } catch (error) {
    await stop()
    throw error
  }
}

/**
 * A new bank and one staff member's token, made through the service functions on the cluster's database and keys
 * (what `strongroom tenant create` and `staff token` do, without a process of their own each).
 */
export async function staffOfNewBank(cluster: RunningCluster, role: Role): Promise<{ staffId: string; token: string }> {
  const config = loadConfig(cluster.env)
  const database = await openDatabase(config)
  try {
    const ctx = {
      db: database.db,
      keyring: new Keyring(database.db, await LocalKeyFileProvider.open(config.keyFile, { create: false })),
    }
    const tenant = await createTenant(ctx, 'Cluster Bank', operator)
    const staff = await createStaff(ctx, tenant.id, { name: role, role }, operator)
    const { token } = await issueStaffToken(ctx, staff, { ttlSeconds: 86_400 }, operator)
    return { staffId: staff.id, token }
  } finally {
    await database.close()
  }
}
