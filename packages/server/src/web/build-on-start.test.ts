import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { createLogger } from '../platform/logging.ts'
import { ensureWebBuild } from './build-on-start.ts'
import { isWebBuilt, loadWebBuild } from './static-pages.ts'

const log = createLogger('silent')

test('production never builds at start: the pages stay missing and say how to build them', async () => {
  const webDir = mkdtempSync(path.join(os.tmpdir(), 'strongroom-web-prod-'))
  try {
    assert.equal(await ensureWebBuild({ mode: 'production', webDir }, log), 'missing')
    assert.equal(isWebBuilt(webDir), false)
  } finally {
    rmSync(webDir, { recursive: true, force: true })
  }
})

test('dev mode builds the pages when there is no build, once', async () => {
  const webDir = mkdtempSync(path.join(os.tmpdir(), 'strongroom-web-dev-'))
  try {
    assert.equal(await ensureWebBuild({ mode: 'dev', webDir }, log), 'built')
    const build = loadWebBuild(webDir, ['console', 'secure'])
    assert.ok(build?.pages.get('console')?.body.toString().includes('<title>Strongroom — Agent console</title>'))
    assert.ok(build && [...build.assets.keys()].some((file) => /^console-[A-Za-z0-9_-]+\.js$/.test(file)))
    assert.equal(await ensureWebBuild({ mode: 'dev', webDir }, log), 'present')
  } finally {
    rmSync(webDir, { recursive: true, force: true })
  }
})

test('nodes starting together build once each aside and end with one whole build', async () => {
  const parent = mkdtempSync(path.join(os.tmpdir(), 'strongroom-web-race-'))
  const webDir = path.join(parent, 'dist')
  try {
    const results = await Promise.all([
      ensureWebBuild({ mode: 'dev', webDir }, log),
      ensureWebBuild({ mode: 'dev', webDir }, log),
    ])
    assert.deepEqual(results, ['built', 'built'])
    assert.ok(loadWebBuild(webDir, ['console'])?.pages.get('console'))
    assert.deepEqual(readdirSync(parent), ['dist'], 'no staging directory left behind')
  } finally {
    rmSync(parent, { recursive: true, force: true })
  }
})
