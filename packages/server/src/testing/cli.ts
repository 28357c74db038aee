import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before } from 'node:test'
import { createTestDatabase, type TestDatabase } from './harness.ts'
import { testKeyProvider } from './softhsm.ts'

/**
 * The arguments to Node that run the `strongroom` command from the sources: tests run what they test, not a build
 * that may be older than it.
 */
export const strongroomFromSource = [
  '--conditions=@strongroom/source',
  '--import',
  import.meta.resolve('tsx'),
  path.resolve(import.meta.dirname, '../cli/main.ts'),
]

/**
 * The `strongroom` command as an operator runs it, in a data directory and database of the calling test file's own.
 * Call it inside a describe: it registers the set-up and clean-up.
 */
export function cliHarness() {
  const state = { dir: '', database: undefined as unknown as TestDatabase, env: {} as NodeJS.ProcessEnv }
  before(async () => {
    state.dir = mkdtempSync(path.join(os.tmpdir(), 'sr-cli-'))
    state.database = await createTestDatabase()
    state.env = {
      PATH: process.env.PATH,
      STRONGROOM_DATA_DIR: state.dir,
      DATABASE_URL: state.database.url ?? '',
      LOG_LEVEL: 'silent',
      ...testKeyProvider().env,
    }
  })
  after(async () => {
    await state.database.drop()
    rmSync(state.dir, { recursive: true, force: true })
  })
  return {
    get dir() {
      return state.dir
    },
    get database() {
      return state.database
    },
    run(args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
      const result = spawnSync(process.execPath, [...strongroomFromSource, ...args], {
        env: { ...state.env, ...extraEnv },
        encoding: 'utf8',
      })
      return { status: result.status, stdout: result.stdout, stderr: result.stderr }
    },
  }
}
