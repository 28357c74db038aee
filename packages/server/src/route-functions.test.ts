import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, test } from 'node:test'
import ts from 'typescript'

const MAX_LINES = 80

/**
 * The functions of a file that registers routes (it declares access rules), with their length in lines. A route file
 * reads as small functions by topic, each a few routes long, not as one function per capability.
 */
function routeFunctions(file: string, source: string): { name: string; lines: number }[] {
  if (!source.includes('config: { access')) return []
  const tree = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true)
  const found: { name: string; lines: number }[] = []
  const visit = (node: ts.Node) => {
    if (ts.isFunctionDeclaration(node) && node.name) {
      const first = tree.getLineAndCharacterOfPosition(node.getStart(tree)).line
      const last = tree.getLineAndCharacterOfPosition(node.getEnd()).line
      found.push({ name: node.name.text, lines: last - first + 1 })
    }
    ts.forEachChild(node, visit)
  }
  visit(tree)
  return found
}

function serverSources(folder: string): string[] {
  return readdirSync(folder, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts'))
    .map((file) => path.join(folder, file))
}

describe('route functions', () => {
  test(`none is longer than ${MAX_LINES} lines`, () => {
    const sources = serverSources(import.meta.dirname)
    const measured = sources.flatMap((file) =>
      routeFunctions(file, readFileSync(file, 'utf8')).map((fn) => ({ ...fn, file: path.relative('.', file) })),
    )
    assert.ok(measured.length > 50, 'the route files were found and measured')
    assert.deepEqual(
      measured.filter((fn) => fn.lines > MAX_LINES),
      [],
    )
  })

  test('a route function over the limit is found', () => {
    const routes = Array.from({ length: 30 }, (_, i) =>
      [`  app.get('/v1/r${i}', {`, '    config: { access: allow.anyone },', '  }, async () => ({}))'].join('\n'),
    )
    const source = `async function everyRoute(app) {\n${routes.join('\n')}\n}\n`
    assert.deepEqual(routeFunctions('planted.ts', source), [{ name: 'everyRoute', lines: 92 }])
    assert.deepEqual(routeFunctions('plain.ts', source.replaceAll('config: { access', 'config: { other')), [])
  })
})
