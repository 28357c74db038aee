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
  close(): Promise<void>
}

const INT8_OID = 20
// Sequence numbers are int8 in SQL; they stay far below 2^53, so both drivers hand them back as numbers.
pg.types.setTypeParser(INT8_OID, (value) => Number(value))

/** Opens the database the config names: PostgreSQL through DATABASE_URL, PGlite under the data directory otherwise. */
export async function openDatabase(
  config: Pick<Config, 'dataDir' | 'databasePoolSize' | 'statementTimeoutMs'> & { databaseUrl?: string | undefined },
  options: { inMemory?: boolean } = {},
): Promise<DatabaseHandle> {
  let dialect: Dialect
  let kind: DatabaseHandle['kind']
  let releaseLock = () => {}
  if (config.databaseUrl) {
    kind = 'postgres'
    const pgPool = new pg.Pool({
      connectionString: config.databaseUrl,
      max: config.databasePoolSize,
      statement_timeout: config.statementTimeoutMs,
      connectionTimeoutMillis: 5000,
    })
    // An idle client that loses its server must not crash the process; the next query gets a fresh one.
    pgPool.on('error', () => {})
    dialect = new PostgresDialect({ pool: pgPool })
  } else {
    kind = 'pglite'
    let dataDir: string | undefined
    if (!options.inMemory) {
      dataDir = path.resolve(config.dataDir, 'pgdata')
      mkdirSync(dataDir, { recursive: true, mode: 0o700 })
      releaseLock = lockEmbeddedDatabase(dataDir)
    }
    const pglite = new PGlite(dataDir, { parsers: { [INT8_OID]: (value: string) => Number(value) } })
    await pglite.waitReady
    dialect = new PGliteDialect({ pglite })
  }
  const db = new Kysely<Database>({ dialect })
  return {
    db,
    kind,
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
    async close() {
      await db.destroy()
      releaseLock()
    },
  }
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

/** Applies every pending migration; safe to run from several nodes at once (Kysely takes a lock). */
export async function migrateToLatest(db: Db): Promise<string[]> {
  const migrator = new Migrator({ db, provider: migrationProvider })
  const { error, results } = await migrator.migrateToLatest()
  if (error) throw error
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName)
}
