import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { type Dialect, Kysely, PGliteDialect, PostgresDialect, sql } from 'kysely'
import { Migrator } from 'kysely/migration'
import pg from 'pg'
import type { Config } from '../config.ts'
import { latestMigration, migrationProvider } from './migrations/index.ts'
import type { Database } from './schema.ts'

export type Db = Kysely<Database>

export interface DatabaseHandle {
  readonly db: Db
  readonly kind: 'pglite' | 'postgres'
  /** True when the database answers and every migration this build knows has been applied. */
  ready(): Promise<boolean>
  /**
   * Called when a connection to PostgreSQL breaks (the server restarted or ended the backend, the network dropped):
   * the queries on it fail and the pool opens a fresh one for the next; the process goes on.
   */
  onConnectionLost(listener: (error: Error) => void): () => void
  /** The embedded database's files as one tarball, to open a copy from (`loadDataDir`); PGlite only. */
  snapshot?(): Promise<Blob>
  close(): Promise<void>
}

const INT8_OID = 20
// Sequence numbers are int8 in SQL; they stay far below 2^53, so both drivers hand them back as numbers.
pg.types.setTypeParser(INT8_OID, (value) => Number(value))

/** Opens the database the config names: PostgreSQL through DATABASE_URL, PGlite under the data directory otherwise. */
export async function openDatabase(
  config: Pick<Config, 'dataDir' | 'databasePoolSize' | 'statementTimeoutMs'> & { databaseUrl?: string | undefined },
  /** `loadDataDir`: start the embedded database from a `snapshot()` of another, instead of an empty one. */
  options: { inMemory?: boolean; loadDataDir?: Blob } = {},
): Promise<DatabaseHandle> {
  let dialect: Dialect
  let kind: DatabaseHandle['kind']
  let releaseLock = () => {}
  let snapshot: DatabaseHandle['snapshot']
  const lostListeners = new Set<(error: Error) => void>()
  const connectionLost = (error: Error) => {
    for (const listener of lostListeners) listener(error)
  }
  if (config.databaseUrl) {
    kind = 'postgres'
    const pgPool = new pg.Pool({
      connectionString: config.databaseUrl,
      max: config.databasePoolSize,
      statement_timeout: config.statementTimeoutMs,
      connectionTimeoutMillis: 5000,
    })
    // A client that loses its server emits 'error'; with no listener that would end the process. pg-pool listens on
    // idle clients only (and re-emits on the pool), and takes its listener off while a client is checked out, so
    // every client gets a listener of its own for its whole life. The query in flight fails with the
    // same error (a 503 for its request), and the pool discards the broken client on release.
    pgPool.on('error', () => {})
    const names = new Map<string, string>()
    pgPool.on('connect', (client) => {
      client.on('error', connectionLost)
      prepareMarked(client, names)
    })
    dialect = new PostgresDialect({ pool: pgPool })
  } else {
    kind = 'pglite'
    let dataDir: string | undefined
    if (!options.inMemory) {
      dataDir = path.resolve(config.dataDir, 'pgdata')
      mkdirSync(dataDir, { recursive: true, mode: 0o700 })
      releaseLock = lockEmbeddedDatabase(dataDir)
    }
    const pglite = new PGlite(dataDir, {
      parsers: { [INT8_OID]: (value: string) => Number(value) },
      loadDataDir: options.loadDataDir,
    })
    await pglite.waitReady
    snapshot = () => pglite.dumpDataDir('none')
    dialect = new PGliteDialect({ pglite })
  }
  const db = new Kysely<Database>({ dialect })
  return {
    db,
    kind,
    snapshot,
    async ready() {
      try {
        const row = await sql<{ name: string }>`select name from kysely_migration order by name desc limit 1`.execute(
          db,
        )
        return row.rows[0]?.name === latestMigration
      } catch {
        return false
      }
    },
    onConnectionLost(listener) {
      lostListeners.add(listener)
      return () => lostListeners.delete(listener)
    },
    async close() {
      lostListeners.clear()
      await db.destroy()
      releaseLock()
    },
  }
}

/**
 * Put first in a statement's SQL: PostgreSQL parses it once per connection (a named prepared statement) rather than at
 * every execution. For a long statement run many times a second with the same text (the message log's batch), where
 * parsing and planning would cost the database more than executing it for a small batch. PGlite ignores the comment.
 */
export const PREPARED = '/* prepared */ '

/**
 * Runs a statement marked `PREPARED` under a name of its own, the same on every connection of the pool: pg sends the
 * text with the first execution on each connection and only the name after. The statements so marked are few (one
 * text each), so the names do not grow without bound.
 */
function prepareMarked(client: pg.PoolClient, names: Map<string, string>): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown
  client.query = ((text: unknown, ...rest: unknown[]) => {
    if (typeof text !== 'string' || !text.startsWith(PREPARED) || !Array.isArray(rest[0]) || rest.length > 1) {
      return query(text, ...rest)
    }
    let name = names.get(text)
    if (name === undefined) {
      name = `strongroom_${names.size + 1}`
      names.set(text, name)
    }
    return query({ name, text, values: rest[0] })
  }) as typeof client.query
}

/**
 * The embedded database is one process's: a second process opening the same directory would corrupt it. A lock file
 * holding the owner's pid keeps a second one out with a clear message; a lock left by a dead process is taken over.
 */
function lockEmbeddedDatabase(dataDir: string): () => void {
  const lockFile = path.join(dataDir, 'strongroom.lock')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lockFile, String(process.pid), { flag: 'wx', mode: 0o600 })
      return () => rmSync(lockFile, { force: true })
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      const owner = Number(readFileSync(lockFile, 'utf8'))
      if (isRunning(owner)) {
        throw new Error(
          `the embedded database in ${dataDir} is in use by process ${owner}: stop it first, or use PostgreSQL (DATABASE_URL)`,
        )
      }
      rmSync(lockFile, { force: true })
    }
  }
  throw new Error(`cannot lock the embedded database in ${dataDir}`)
}

function isRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** PostgreSQL error codes that mean the connection, not the statement, failed: class 08 and the server going away. */
const CONNECTION_LOST_CODES = /^(08...|57P0[1-3])$/
const NETWORK_ERROR_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND'])
const NETWORK_ERROR_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'Connection ended unexpectedly',
]

/**
 * Whether an error says the database could not be reached or the connection broke under the query: the request
 * fails as temporarily unavailable (503, try again), and the next query gets a fresh connection.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && (CONNECTION_LOST_CODES.test(code) || NETWORK_ERROR_CODES.has(code))) return true
  return NETWORK_ERROR_MESSAGES.some((message) => error.message.startsWith(message))
}

/**
 * Whether PostgreSQL refused a value itself (SQLSTATE class 22, "data exception": a number out of its column's
 * range, text it cannot store): the request's fault, not the server's.
 */
export function isDataException(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^22[0-9A-Z]{3}$/.test(code)
}

/**
 * Runs a start-up step, trying again with backoff (a quarter second doubling to 5 s) while the database is
 * unreachable or drops the connection, until `deadlineMs` has passed; any other error is thrown at once. A node
 * started before its database, or while the database restarts, waits for it instead of exiting.
 */
export async function whileDatabaseUnavailable<T>(
  step: () => Promise<T>,
  options: { deadlineMs: number; onRetry: (error: Error, delayMs: number) => void },
): Promise<T> {
  const deadline = Date.now() + options.deadlineMs
  for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
    try {
      return await step()
    } catch (error) {
      if (!isDatabaseUnavailable(error) || Date.now() + delay > deadline) throw error
      options.onRetry(error as Error, delay)
      await new Promise((resolve) => setTimeout(resolve, delay))
    }
  }
}

/** Applies every pending migration; safe to run from several nodes at once (Kysely takes a lock). */
export async function migrateToLatest(db: Db): Promise<string[]> {
  const migrator = new Migrator({ db, provider: migrationProvider })
  const { error, results } = await migrator.migrateToLatest()
  if (error) throw error
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName)
}
