import { createHash } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { enrolDevice } from '@strongroom/sdk'
import pg from 'pg'
import WebSocket from 'ws'
import type { ArchiveSink } from '../archive/archive-member.ts'
import { operator } from '../audit/events.ts'
import { createCustomer } from '../identity/customers.ts'
import { issueEnrolmentCode } from '../identity/enrolment-codes.ts'
import { type Config, loadConfig } from '../platform/config.ts'
import { type DatabaseHandle, migrateToLatest, openDatabase } from '../platform/db/database.ts'
import type { Role } from '../platform/http/roles.ts'
import { createLogger, type Logger } from '../platform/logging.ts'
import { type RunningServer, startServer } from '../server.ts'
import { createStaff, issueStaffToken } from '../tenancy/staff.ts'
import { createTenant } from '../tenancy/tenants.ts'
import { testKeyProvider } from './softhsm.ts'

/**
 * Test servers run on what the environment offers (their keys in SoftHSM2 when STRONGROOM_KEY_PROVIDER=pkcs11): PostgreSQL (a fresh database per server) and NATS when
 * DATABASE_URL and NATS_URL are set, PGlite in memory and the in-memory bus otherwise. The same tests run on both.
 */
export const usingPostgres = Boolean(process.env.DATABASE_URL)
export const usingNats = Boolean(process.env.NATS_URL)

export interface TestDatabase {
  url: string | undefined
  drop(): Promise<void>
}

/**
 * A new, empty PostgreSQL database on the server that `base` names (DATABASE_URL by default) for one test file or
 * benchmark run, or none (PGlite) when there is no server to use. `template`: a copy of that database instead.
 */
export async function createTestDatabase(base = process.env.DATABASE_URL, template?: string): Promise<TestDatabase> {
  if (!base) return { url: undefined, drop: async () => {} }
  const name = `sr_test_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
  await onServer(base, (admin) => admin.query(`create database ${name}${template ? ` template ${template}` : ''}`))
  return {
    url: databaseUrl(base, name),
    async drop() {
      await onServer(base, (admin) => admin.query(`drop database if exists ${name} with (force)`))
    },
  }
}

/**
 * A new database with every migration applied, for a test server: a copy of a template migrated once for this set of
 * migrations, so that a hundred test servers do not each run fifty migrations (about 1 s each on a loaded machine).
 * The template is named after a digest of the migration files, so a changed or added migration makes a new one.
 */
export async function createMigratedTestDatabase(base = process.env.DATABASE_URL): Promise<TestDatabase> {
  if (!base) return createTestDatabase(base)
  return createTestDatabase(base, await migratedTemplate(base))
}

async function migratedTemplate(base: string): Promise<string> {
  const template = `sr_template_${migrationsDigest()}`
  const exists = (admin: pg.Client) =>
    admin.query('select 1 from pg_database where datname = $1', [template]).then((r) => r.rowCount === 1)
  await onServer(base, async (admin) => {
    if (await exists(admin)) return
    // One builder at a time (test files start in parallel); the others find the template when the lock is theirs.
    await admin.query('select pg_advisory_lock(hashtext($1))', [template])
    try {
      if (await exists(admin)) return
      const building = `${template}_${process.pid}`
      await admin.query(`drop database if exists ${building} with (force)`)
      await admin.query(`create database ${building}`)
      const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sr-template-'))
      const handle = await openDatabase(loadConfig({}, { dataDir, databaseUrl: databaseUrl(base, building) }))
      try {
        await migrateToLatest(handle.db)
      } finally {
        await handle.close()
        rmSync(dataDir, { recursive: true, force: true })
      }
      // Renamed only once complete: a template that exists is a migrated one.
      await admin.query(`alter database ${building} rename to ${template}`)
    } finally {
      await admin.query('select pg_advisory_unlock(hashtext($1))', [template])
    }
  })
  return template
}

/** The first 16 hex digits of SHA-256 over the migration files' names and contents, in order. */
function migrationsDigest(): string {
  const folder = new URL('../platform/db/migrations/', import.meta.url)
  const hash = createHash('sha256')
  for (const file of readdirSync(folder).sort()) hash.update(file).update(readFileSync(new URL(file, folder)))
  return hash.digest('hex').slice(0, 16)
}

/**
 * An in-memory PGlite database with every migration applied, opened from a snapshot: PGlite's initdb and fifty
 * migrations cost seconds a server, a copy a fraction of that. The snapshot is made once and kept on disk for the
 * next test processes, named by PGlite's version and the migrations' digest.
 */
export async function openMigratedInMemoryDatabase(): Promise<DatabaseHandle> {
  migratedPglite ??= migratedPgliteSnapshot()
  return openDatabase(loadConfig({}, { dataDir: os.tmpdir() }), { inMemory: true, loadDataDir: await migratedPglite })
}

let migratedPglite: Promise<Blob> | undefined

async function migratedPgliteSnapshot(): Promise<Blob> {
  const pgliteDir = path.dirname(path.dirname(fileURLToPath(import.meta.resolve('@electric-sql/pglite'))))
  const { version } = JSON.parse(readFileSync(path.join(pgliteDir, 'package.json'), 'utf8')) as { version: string }
  const file = path.join(pgliteDir, '../../.cache/strongroom-tests', `pglite-${version}-${migrationsDigest()}.tar`)
  if (existsSync(file)) return new Blob([readFileSync(file)])
  const handle = await openDatabase(loadConfig({}, { dataDir: os.tmpdir() }), { inMemory: true })
  try {
    await migrateToLatest(handle.db)
    const snapshot = await (handle.snapshot as () => Promise<Blob>)()
    // Written whole, then renamed: a process that finds the file finds all of it.
    mkdirSync(path.dirname(file), { recursive: true })
    const partial = `${file}.${process.pid}`
    writeFileSync(partial, Buffer.from(await snapshot.arrayBuffer()))
    renameSync(partial, file)
    return snapshot
  } finally {
    await handle.close()
  }
}

async function onServer<T>(base: string, work: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  try {
    return await work(admin)
  } finally {
    await admin.end()
  }
}

function databaseUrl(base: string, name: string): string {
  const url = new URL(base)
  url.pathname = `/${name}`
  return url.href
}

export interface TestServer extends RunningServer {
  config: Config
  dataDir: string
  stop(): Promise<void>
}

export async function startTestServer(
  overrides: Partial<Config> = {},
  database?: TestDatabase,
  /** `database`: an open handle to share across servers (a restart on the same data, PGlite included). */
  options: { archiveSink?: ArchiveSink; database?: DatabaseHandle; logger?: Logger } = {},
): Promise<TestServer> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'strongroom-test-'))
  // Google's attestation status list is not fetched from tests, production-mode ones included: an empty list stands in.
  const attestationStatus = path.join(dataDir, 'android-attestation-status.json')
  writeFileSync(attestationStatus, '{"entries": {}}')
  const db = database ?? (await createMigratedTestDatabase())
  const config = loadConfig(
    {},
    {
      port: 0,
      host: '127.0.0.1',
      mode: 'dev',
      devSeed: false,
      dataDir,
      keyFile: path.join(dataDir, 'keyring.json'),
      androidAttestStatus: attestationStatus,
      logLevel: 'silent',
      databaseUrl: db.url,
      natsUrl: process.env.NATS_URL,
      ...testKeyProvider().config,
      // Production requires one; tests that start it reach the server directly, at its listening URL.
      ...(overrides.mode === 'production' ? { publicUrl: 'https://strongroom.test' } : {}),
      ...overrides,
    },
  )
  // On PGlite, a copy of a migrated database (PostgreSQL's databases are copies of a migrated template already).
  const ownDatabase = usingPostgres || options.database ? undefined : await openMigratedInMemoryDatabase()
  const server = await startServer(config, {
    logger: createLogger('silent'),
    inMemoryDatabase: true,
    ...options,
    database: options.database ?? ownDatabase,
  })
  return {
    ...server,
    config,
    dataDir,
    async stop() {
      await server.close()
      await ownDatabase?.close()
      if (!database) await db.drop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

/**
 * Two nodes on one database, as a deployment runs them: on PostgreSQL each with its own pool, on PGlite sharing the
 * one in-memory database. The counters they limit with are the database's, so a client gets no more by alternating.
 */
export async function startTwoNodes(overrides: Partial<Config> = {}) {
  const testDatabase: TestDatabase = await createMigratedTestDatabase()
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sr-limits-'))
  const shared: DatabaseHandle | undefined = usingPostgres ? undefined : await openMigratedInMemoryDatabase()
  const a = await startTestServer(overrides, testDatabase, { database: shared })
  const b = await startTestServer(
    { ...overrides, keyFile: a.config.keyFile, archiveKeyFile: a.config.archiveKeyFile, archiveMember: false },
    testDatabase,
    { database: shared },
  )
  return {
    a,
    b,
    /** The database both use (undefined on PGlite), for a third node started as a process. */
    databaseUrl: testDatabase.url,
    async stop() {
      await b.stop()
      await a.stop()
      await shared?.close()
      await testDatabase.drop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

export interface TestBank {
  tenantId: string
  adminToken: string
  agentId: string
  agentToken: string
  customerId: string
  enrolmentCode(): Promise<string>
  staffToken(role: Role, name?: string): Promise<{ staffId: string; token: string }>
  /** Enrols a device of the customer, as its app would (streams over `ws`), on this server or another node. */
  enrol(label: string, options?: { baseUrl?: string }): ReturnType<typeof enrolDevice>
}

/** A tenant with an admin, an agent and a customer, made through the service functions. */
export async function createTestBank(server: RunningServer, name = 'Test Bank'): Promise<TestBank> {
  const { ctx } = server
  const tenant = await createTenant(ctx, name, operator)
  const staffToken = async (role: Role, staffName = `${role}-${Math.random().toString(36).slice(2, 8)}`) => {
    const staff = await createStaff(ctx, tenant.id, { name: staffName, role }, operator)
    return { staffId: staff.id, token: (await issueStaffToken(ctx, staff, { ttlSeconds: 3600 }, operator)).token }
  }
  const admin = await staffToken('admin', 'admin')
  const agent = await staffToken('agent', 'agent')
  const customer = await createCustomer(ctx, tenant.id, { externalRef: `REF-${name}`, displayName: 'Ada Customer' })
  const enrolmentCode = async () =>
    (await issueEnrolmentCode(ctx, tenant.id, customer.id, { kind: 'staff', id: admin.staffId })).code
  return {
    tenantId: tenant.id,
    adminToken: admin.token,
    agentId: agent.staffId,
    agentToken: agent.token,
    customerId: customer.id,
    enrolmentCode,
    staffToken,
    enrol: async (label, options = {}) =>
      enrolDevice({
        baseUrl: options.baseUrl ?? server.url,
        enrolmentCode: await enrolmentCode(),
        label,
        WebSocket: WebSocket as never,
      }),
  }
}
