import fc from 'fast-check'

/** Values that break careless code: NUL, unpaired surrogates, SQL and path tricks, numbers beyond any column. */
export const hostileStrings = [
  '\u0000',
  '\ud800',
  '\udfff',
  '\udc00\ud800',
  "'; drop table staff; --",
  '../../etc/passwd',
  '%zz',
  '__proto__',
  'x'.repeat(5000),
  '',
  '\u202e\u200b',
]
const hostileNumbers = [1e20, -1e20, 2 ** 53 + 2, -(2 ** 63), 2 ** 31, -1, 1.5, Number.MAX_VALUE, Number.MIN_VALUE]
const hostileValue = fc.oneof(
  fc.constantFrom<unknown>(...hostileStrings),
  fc.constantFrom<unknown>(...hostileNumbers),
  fc.constantFrom<unknown>(null, true, [], {}, [[[[[]]]]], { __proto__: 1 }, '1e20', '99999999999999999999999'),
)
/** A hostile value in place of `original`: the same text with a NUL or an unpaired surrogate in it, or anything. */
const hostileFor = (original: unknown) =>
  typeof original === 'string'
    ? fc.oneof(
        fc.constantFrom(`${original}\u0000`, `\u0000${original}`, `${original}\ud800`, `\udc00${original}`),
        hostileValue,
      )
    : hostileValue

/** Every place in a JSON value a hostile value can go: each leaf, and a new key in each object. */
function placesIn(value: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(value)) return [at, ...value.flatMap((item, i) => placesIn(item, [...at, i]))]
  if (value !== null && typeof value === 'object') {
    return [[...at, '\u0000key'], ...Object.entries(value).flatMap(([key, inner]) => placesIn(inner, [...at, key]))]
  }
  return [at]
}

function valueAt(value: unknown, at: (string | number)[]): unknown {
  return at.reduce<unknown>((inner, key) => (inner as Record<string, unknown> | undefined)?.[key], value)
}

function withValueAt(value: unknown, at: (string | number)[], replacement: unknown): unknown {
  if (at.length === 0) return replacement
  const [key, ...rest] = at as [string | number, ...(string | number)[]]
  const copy = (Array.isArray(value) ? [...value] : { ...(value as object) }) as Record<string | number, unknown>
  copy[key] = withValueAt(copy[key], rest, replacement)
  return copy
}

/** A valid value with exactly one place spoiled, so that the rest of the request still passes its schema. */
export const spoiled = (valid: fc.Arbitrary<unknown>) =>
  valid.chain((value) => {
    const places = placesIn(value)
    return fc
      .constantFrom(...places)
      .chain((at) => hostileFor(valueAt(value, at)).map((bad) => withValueAt(value, at, bad)))
  })
