#!/usr/bin/env node
/**
 * `npm run build`: compiles the SDK and the server to JavaScript (tsc into each package's dist/, ESM with source
 * maps), builds the web pages (Vite, into packages/web/dist), then prints the production dependency list and the
 * compiled server's warm start time on the embedded database.
 *
 * `node scripts/build.js --if-stale` (what `npm start` runs first) builds only what is missing or older than its
 * sources, and prints nothing when everything is up to date, so a fresh clone's `npm install && npm start` works.
 * `--report` builds nothing and prints the report (CI runs it under each Node.js line).
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

const root = path.resolve(import.meta.dirname, '..')
const at = (...parts) => path.join(root, ...parts)
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
const ifStale = process.argv.includes('--if-stale')
const reportOnly = process.argv.includes('--report')

/** What is not a source: dependencies, build output (and a web build in progress), screenshots of browser tests. */
const skipped = /^(node_modules|dist|test-output)\b/

/** The newest modification time among these files and directories (tests excluded: they are not built). */
function newest(paths) {
  let latest = 0
  const visit = (file) => {
    if (!existsSync(file)) return
    const stat = statSync(file)
    if (stat.isDirectory()) {
      for (const entry of readdirSync(file)) if (!skipped.test(entry)) visit(path.join(file, entry))
    } else if (!file.endsWith('.test.ts')) latest = Math.max(latest, stat.mtimeMs)
  }
  for (const p of paths) visit(p)
  return latest
}

const shared = [
  'package.json',
  'package-lock.json',
  'tsconfig.base.json',
  'packages/sdk/package.json',
  'packages/sdk/src',
]
const targets = [
  {
    name: 'server',
    stamp: at('packages/server/dist/.built'),
    inputs: [...shared, 'packages/sdk/tsconfig.json', 'packages/sdk/tsconfig.build.json', 'packages/server'],
    build: () => {
      for (const pkg of ['sdk', 'server']) {
        rmSync(at('packages', pkg, 'dist'), { recursive: true, force: true })
        run(process.execPath, [tsc, '-p', at('packages', pkg, 'tsconfig.build.json')])
      }
      writeFileSync(at('packages/server/dist/.built'), '')
    },
  },
  {
    name: 'web',
    stamp: at('packages/web/dist/.vite/manifest.json'),
    inputs: [...shared, 'packages/web'],
    build: () => run(process.execPath, ['--import', 'tsx', at('packages/web/build.ts')], { quiet: ifStale }),
  },
]

function run(command, args, { quiet = false } = {}) {
  const result = spawnSync(command, args, { cwd: root, stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit' })
  if (result.status !== 0) {
    console.error(`strongroom build: ${path.basename(args[args.length - 1] ?? command)} failed`)
    process.exit(result.status ?? 1)
  }
}

for (const target of reportOnly ? [] : targets) {
  const builtAt = existsSync(target.stamp) ? statSync(target.stamp).mtimeMs : 0
  if (ifStale && builtAt > newest(target.inputs.map((p) => at(p)))) continue
  const started = performance.now()
  if (ifStale) console.error(`strongroom: building the ${target.name} (missing or older than its sources)…`)
  target.build()
  console.error(`strongroom build: ${target.name} in ${((performance.now() - started) / 1000).toFixed(1)} s`)
}
if (ifStale) process.exit(0)

// What a production install (`npm ci --omit=dev`) brings: the packages the server and the SDK need at run time.
console.log('\nstrongroom build: production dependencies (npm ls --omit=dev)')
run('npm', ['ls', '--omit=dev', '--workspace=@strongroom/server', '--workspace=@strongroom/sdk'])

console.log(
  `\nstrongroom build: warm start of the compiled server on the embedded database, Node.js ${process.version}`,
)
const seconds = await warmStart()
console.log(`strongroom build: ready (GET /readyz answered 200) ${seconds.toFixed(2)} s after \`strongroom start\``)

/**
 * Starts the compiled server twice on a fresh data directory (the first start creates the database, migrates and
 * seeds it) and times the second, from spawning the process to the first 200 from /readyz.
 */
async function warmStart() {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'strongroom-warm-start-'))
  try {
    await startOnce(dataDir)
    return await startOnce(dataDir)
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
}

async function startOnce(dataDir) {
  const port = await freePort()
  const started = performance.now()
  // The embedded database and bus, as `npm start` on a fresh machine: never the PostgreSQL or NATS a CI shell exports
  // (their data was sealed with other keys, and a warm start must not write into a shared database).
  const { DATABASE_URL: _database, NATS_URL: _nats, ...environment } = process.env
  const server = spawn(process.execPath, [at('packages/server/bin/strongroom.js'), 'start'], {
    cwd: root,
    env: {
      ...environment,
      PORT: String(port),
      STRONGROOM_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      STRONGROOM_MODE: 'dev',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const exited = new Promise((resolve) => server.once('exit', resolve))
  try {
    for (;;) {
      if (server.exitCode !== null) throw new Error(`the server exited with ${server.exitCode} before it was ready`)
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (response) => response.ok,
        () => false,
      )
      if (ready) return (performance.now() - started) / 1000
      if (performance.now() - started > 120_000) throw new Error('the server was not ready within 120 s')
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  } finally {
    server.kill('SIGTERM')
    await exited
  }
}

async function freePort() {
  const probe = net.createServer()
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address()
  await new Promise((resolve) => probe.close(resolve))
  return port
}
