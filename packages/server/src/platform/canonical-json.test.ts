import assert from 'node:assert/strict'
import { test } from 'node:test'
import canonicalize from 'canonicalize'
import { canonicalJson } from './canonical-json.ts'

// The chains hash canonicalJson's bytes: one byte different from what canonicalize wrote when a record was linked and
// every verification of it fails, so it must agree with canonicalize on every value, not only the common ones.

test('writes the RFC 8785 example (§3.2.2) as the RFC does', () => {
  const example = JSON.parse(
    '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],' +
      '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
  )
  assert.equal(
    canonicalJson(example),
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
      '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
  )
})

test('agrees with canonicalize on keys sorted by UTF-16 code units, integer-like keys, nesting and odd strings', () => {
  const values: unknown[] = [
    { b: 1, a: { d: [3, { z: null, y: 'x' }], c: true } },
    JSON.parse('{"10":1,"9":2,"a":3,"":4,"1":5}'),
    JSON.parse('{"__proto__":{"b":1,"a":2},"x":1}'),
    { '\u{1f600}': 1, '\uffff': 2, é: 3, e: 4, E: 5 },
    { route: '/v1/conversations/:id/messages', ip: '203.0.113.7' },
    { text: 'a\\ud800 is six characters', tab: '\t', nul: '\u0000', line: '\u2028' },
    { n: [-0, 0.1, 1e21, 1e-7, 5e-324, 2 ** 53 + 1, -1.5] },
    [[], {}, [{}], ''],
    { skipped: undefined, kept: 1 },
    { at: new Date(0), boxed: Object('s') },
    'a string',
    12.5,
    null,
  ]
  let deep: unknown = { leaf: 'x' }
  for (let i = 0; i < 100; i++) deep = { next: deep, [`k${i}`]: [i] }
  values.push(deep)
  for (const value of values) assert.equal(canonicalJson(value), canonicalize(value), JSON.stringify(value))
})

test('agrees with canonicalize on random JSON', () => {
  let seed = 17
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed / 2 ** 31
  }
  const alphabet = ['a', 'b', 'B', '1', '0', '_', 'é', '\u{1f600}', '"', '\\', '\n', '\u007f']
  const text = () =>
    Array.from({ length: Math.floor(random() * 4) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('')
  const value = (depth: number): unknown => {
    const kind = Math.floor(random() * (depth > 3 ? 4 : 6))
    if (kind === 0) return text()
    if (kind === 1) return (random() - 0.5) * 10 ** Math.floor(random() * 40 - 20)
    if (kind === 2) return random() < 0.5 ? null : random() < 0.5
    if (kind === 3) return Math.floor(random() * 100)
    if (kind === 4) return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1))
    return Object.fromEntries(Array.from({ length: Math.floor(random() * 5) }, () => [text(), value(depth + 1)]))
  }
  for (let i = 0; i < 5000; i++) {
    const v = JSON.parse(JSON.stringify(value(0)))
    assert.equal(canonicalJson(v), canonicalize(v), JSON.stringify(v))
  }
})

test('refuses what RFC 8785 refuses, as canonicalize does', () => {
  for (const value of [
    { a: JSON.parse('"\\ud800"') },
    { [JSON.parse('"\\udfff"')]: 1 },
    [Number.NaN],
    { a: Infinity },
  ]) {
    assert.throws(() => canonicalize(value))
    assert.throws(() => canonicalJson(value))
  }
})
