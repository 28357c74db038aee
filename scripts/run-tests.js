#!/usr/bin/env node
// Runs every *.test.ts under packages/ with Node's own test runner, from the sources: through tsx, with the SDK's
// exports resolved to its TypeScript by the @strongroom/source condition, never to a build that may be older. Extra
// arguments are passed on, so `npm test -- packages/server/src/identity` runs one folder.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import path from 'node:path'

const roots = process.argv.slice(2).filter((a) => !a.startsWith('-'))
const flags = process.argv.slice(2).filter((a) => a.startsWith('-'))

function collect(dir, found) {
  for (const entry of readdirSync(dir)) {
    if (entry === 'node_modules' || entry.startsWith('.')) continue
    const full = path.join(dir, entry)
    if (statSync(full).isDirectory()) collect(full, found)
    else if (entry.endsWith('.test.ts')) found.push(full)
  }
  return found
}

const files = (roots.length > 0 ? roots : ['packages']).flatMap((root) =>
  statSync(root).isDirectory() ? collect(root, []) : [root],
)
if (files.length === 0) {
  console.error('no test files found')
  process.exit(1)
}
// Server processes the tests start in dev mode build the web pages when there are none: build them once, first.
if (!existsSync('packages/web/dist/.vite/manifest.json')) {
  const build = spawnSync(process.execPath, ['--import', 'tsx', 'packages/web/build.ts'], { stdio: 'inherit' })
  if (build.status !== 0) process.exit(build.status ?? 1)
}
const run = (batch, timeout = 240_000) =>
  batch.length === 0
    ? 0
    : (spawnSync(
        process.execPath,
        [
          '--conditions=@strongroom/source',
          '--import',
          'tsx',
          '--test',
          '--test-concurrency=2',
          `--test-timeout=${timeout}`,
          ...flags,
          ...batch.sort(),
        ],
        { stdio: 'inherit' },
      ).status ?? 1)
// Browser tests run on their own after the rest: a browser beside two busy test files on two cores misses its waits.
const browser = files.filter((file) => file.endsWith('.browser.test.ts'))
// The fault tests run a whole cluster through every fault in turn, each waited out (a node stopped for 10 s, a
// database restarted): they run last, with the time that takes.
const faults = files.filter((file) => file.endsWith('faults.test.ts'))
const others = files.filter((file) => !browser.includes(file) && !faults.includes(file))
// Each part says how long it took, so the suite's time can be read off any run (CI's included).
const timed = (name, batch, timeout) => {
  const started = Date.now()
  const status = run(batch, timeout)
  if (batch.length > 0)
    console.log(`# tests: ${name}, ${batch.length} files, ${Math.round((Date.now() - started) / 1000)} s`)
  return status
}
const othersStatus = timed('server, SDK and web', others)
const browserStatus = timed('browser', browser)
const faultsStatus = timed('faults', faults, 900_000)
process.exit(othersStatus || browserStatus || faultsStatus)
