import { execFileSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/** Debian keeps PostgreSQL's server programs out of PATH, one folder per major version: the newest, else PATH's. */
function serverBinary(name: string): string | undefined {
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : []
  for (const version of versions) {
    const file = path.join(root, version, 'bin', name)
    if (existsSync(file)) return file
  }
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || undefined
  } catch {
    return undefined
  }
}

/** Why a PostgreSQL instance of a test's own cannot be started here, or false when it can. */
export function postgresInstanceMissing(): string | false {
  if (!serverBinary('initdb') || !serverBinary('pg_ctl')) return 'needs PostgreSQL server programs (initdb, pg_ctl)'
  if (process.getuid?.() === 0) {
    try {
      execFileSync('id', ['postgres'], { stdio: 'ignore' })
    } catch {
      return 'running as root, PostgreSQL needs a user of its own (postgres) to run as'
    }
  }
  return false
}

export interface PostgresInstance {
  /** postgres://postgres@127.0.0.1:port/postgres */
  readonly url: string
  /** `pg_ctl restart -m fast`: every session is ended (57P01) and the server is back when this resolves. */
  restart(): Promise<void>
  stop(): Promise<void>
}

/**
 * A PostgreSQL server of a test's own (initdb into a temporary directory, its own port, trust authentication on
 * 127.0.0.1 only), so that a test can restart it without disturbing anyone else's. PostgreSQL refuses to run as
 * root: as root, it runs as the `postgres` user (runuser).
 */
export async function startPostgresInstance(port: number): Promise<PostgresInstance> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sr-pg-'))
  const data = path.join(dir, 'data')
  const asRoot = process.getuid?.() === 0
  if (asRoot) {
    const owner = execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()
    const group = execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()
    chownSync(dir, Number(owner), Number(group))
  }
  const run = (program: string, args: string[]) => {
    const file = serverBinary(program) as string
    const [command, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args]
    execFileSync(command, argv, { stdio: 'pipe', cwd: dir })
  }
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`
  const pgCtl = (...args: string[]) => run('pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-w', ...args])
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-instructions'])
  pgCtl('-o', options, 'start')
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async restart() {
      pgCtl('-o', options, '-m', 'fast', 'restart')
    },
    async stop() {
      try {
        pgCtl('-m', 'immediate', 'stop')
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}
