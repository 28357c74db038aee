import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'

const repository = path.resolve(import.meta.dirname, '../../..')
const depcruise = path.join(repository, 'node_modules/.bin/depcruise')

/** Runs the import rules of `npm run lint` (the repository's own configuration) over the `packages` folder of `root`. */
function checkImports(root: string): { status: number | null; output: string } {
  const run = spawnSync(depcruise, ['packages', '--config', '.dependency-cruiser.cjs'], { cwd: root, encoding: 'utf8' })
  return { status: run.status, output: run.stdout + run.stderr }
}

/**
 * A small tree with the repository's rules and the layout they speak of: two capabilities, platform, and the clients.
 * `files` maps a path under packages/ to the modules it imports (relative, as the code writes them).
 */
function plantTree(files: Record<string, string[]>): string {
  const root = mkdtempSync(path.join(tmpdir(), 'import-rules-'))
  copyFileSync(path.join(repository, '.dependency-cruiser.cjs'), path.join(root, '.dependency-cruiser.cjs'))
  copyFileSync(path.join(repository, 'tsconfig.base.json'), path.join(root, 'tsconfig.base.json'))
  for (const [file, imports] of Object.entries(files)) {
    const full = path.join(root, 'packages', file)
    mkdirSync(path.dirname(full), { recursive: true })
    const lines = imports.map((target, i) => `import { value as v${i} } from '${target}'`)
    writeFileSync(full, `${lines.join('\n')}\nexport const value = [${imports.map((_, i) => `v${i}`).join(', ')}]\n`)
  }
  return root
}

/** A tree that keeps every rule: a capability using another and platform, platform using only itself. */
const sound: Record<string, string[]> = {
  'server/src/platform/http/request.ts': ['./problems.ts'],
  'server/src/platform/http/problems.ts': [],
  'server/src/conversations/messages.ts': ['../platform/http/request.ts'],
  'server/src/channels/inbound.ts': ['../conversations/messages.ts', '../platform/http/problems.ts'],
  'server/src/server.ts': ['./channels/inbound.ts', './conversations/messages.ts'],
  'server/src/testing/harness.ts': ['../server.ts'],
  'sdk/src/client.ts': [],
  'web/src/console/console.browser.test.ts': ['../../../sdk/src/client.ts', '../../../server/src/testing/harness.ts'],
}

describe('the import rules (npm run lint)', () => {
  const trees: string[] = []
  const check = (files: Record<string, string[]>) => {
    const root = plantTree(files)
    trees.push(root)
    return checkImports(root)
  }
  after(() => {
    for (const root of trees) rmSync(root, { recursive: true, force: true })
  })

  test('pass on a tree that keeps them, and on this repository', () => {
    const planted = check(sound)
    assert.equal(planted.status, 0, planted.output)
    const real = checkImports(repository)
    assert.equal(real.status, 0, real.output)
  })

  test('fail on a cycle between two capabilities, even when no single module is in a loop', () => {
    const { status, output } = check({
      ...sound,
      // conversations → identity/devices.ts, identity/revoke.ts → conversations: two folders in one loop.
      'server/src/conversations/messages.ts': ['../identity/devices.ts'],
      'server/src/identity/devices.ts': [],
      'server/src/identity/revoke.ts': ['../conversations/members.ts'],
      'server/src/conversations/members.ts': [],
    })
    assert.notEqual(status, 0)
    assert.match(output, /no-capability-cycle: packages\/server\/src\/(conversations|identity) →/)
  })

  test('fail when platform imports a capability', () => {
    const { status, output } = check({
      ...sound,
      'server/src/platform/http/request.ts': ['./problems.ts', '../../identity/devices.ts'],
      'server/src/identity/devices.ts': [],
    })
    assert.notEqual(status, 0)
    assert.match(
      output,
      /platform-imports-no-capability: packages\/server\/src\/platform\/http\/request\.ts → packages\/server\/src\/identity\/devices\.ts/,
    )
  })

  test('fail when conversations import channels, or a capability imports the server assembly', () => {
    const toChannels = check({
      ...sound,
      'server/src/conversations/messages.ts': ['../channels/envelope.ts'],
      'server/src/channels/envelope.ts': [],
    })
    assert.notEqual(toChannels.status, 0)
    assert.match(toChannels.output, /conversations-never-import-channels/)
    const toServer = check({ ...sound, 'server/src/conversations/messages.ts': ['../server.ts'] })
    assert.notEqual(toServer.status, 0)
    assert.match(toServer.output, /capabilities-import-no-assembly/)
  })

  test('fail when the web or the SDK imports server code other than its testing entry', () => {
    const web = check({
      ...sound,
      'web/src/console/console.browser.test.ts': ['../../../server/src/identity/customers.ts'],
      'server/src/identity/customers.ts': [],
    })
    assert.notEqual(web.status, 0)
    assert.match(web.output, /clients-import-no-server-code: packages\/web\/src\/console\/console\.browser\.test\.ts/)
    const sdk = check({ ...sound, 'sdk/src/client.ts': ['../../server/src/platform/http/problems.ts'] })
    assert.notEqual(sdk.status, 0)
    assert.match(sdk.output, /clients-import-no-server-code|no-package-cycle/)
  })
})
