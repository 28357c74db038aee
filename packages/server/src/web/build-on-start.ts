import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, renameSync, rmSync } from 'node:fs'
import path from 'node:path'
import type { Config } from '../platform/config.ts'
import type { Logger } from '../platform/logging.ts'
import { isWebBuilt } from './static-pages.ts'

/** The web package's build script, where it sits in a checkout of the repository. */
const webBuildScript = path.resolve(import.meta.dirname, '../../../web/build.ts')

/**
 * `strongroom start` in dev mode on a fresh clone: builds the web pages when there is no build yet, so that
 * `npm install && npm start` gives a working console. Production never builds at start (the pages are built once,
 * with `npm run build`, as part of the release); without a build, the pages say how to make one.
 */
export async function ensureWebBuild(
  config: Pick<Config, 'mode' | 'webDir'>,
  log: Logger,
): Promise<'present' | 'built' | 'missing'> {
  if (isWebBuilt(config.webDir)) return 'present'
  if (config.mode !== 'dev' || !existsSync(webBuildScript)) return 'missing'
  log.info({ webDir: config.webDir }, 'building the web pages (first start in dev mode)')
  // Built aside and moved into place in one rename: several nodes starting at once never serve a half-written build.
  const staging = `${config.webDir.replace(/[\\/]+$/, '')}.building-${process.pid}-${randomBytes(4).toString('hex')}`
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', webBuildScript, staging], {
      cwd: path.dirname(webBuildScript),
      // Vite's report goes to stderr: stdout carries the server's JSON log lines.
      stdio: ['ignore', process.stderr, 'inherit'],
    })
    child.on('error', () => resolve(null))
    child.on('exit', resolve)
  })
  if (code === 0 && isWebBuilt(staging)) {
    try {
      renameSync(staging, config.webDir)
    } catch {
      // Another node got there first (or the directory holds something else): use what is there.
    }
  }
  rmSync(staging, { recursive: true, force: true })
  if (isWebBuilt(config.webDir)) return 'built'
  log.warn({ webDir: config.webDir, exitCode: code }, 'the web pages could not be built: run `npm run build`')
  return 'missing'
}
