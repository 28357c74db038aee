import canonicalize from 'canonicalize'

/** What `inCanonicalOrder` gives for a value JSON.stringify cannot write canonically: the general serializer takes it. */
const GENERAL = Symbol('general')

/** Deeper than this, `inCanonicalOrder` stops recursing and the general serializer (which does not recurse) takes it. */
const MAX_DEPTH = 64

/**
 * The value with every object's keys in the order RFC 8785 sorts them (UTF-16 code units, what `.sort()` gives): the
 * value itself when they already are, otherwise copies of the objects that are not. GENERAL for anything outside plain
 * JSON (numbers not finite, objects with a prototype such as a Date, keys an object cannot hold in sorted order).
 */
function inCanonicalOrder(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value
    case 'number':
      return Number.isFinite(value) ? value : GENERAL
    case 'object': {
      if (value === null) return value
      if (depth > MAX_DEPTH) return GENERAL
      if (Array.isArray(value)) {
        let copy: unknown[] | undefined
        for (let i = 0; i < value.length; i++) {
          const item = inCanonicalOrder(value[i], depth + 1)
          if (item === GENERAL) return GENERAL
          if (item !== value[i]) copy ??= value.slice()
          if (copy) copy[i] = item
        }
        return copy ?? value
      }
      const prototype = Object.getPrototypeOf(value)
      if (prototype !== Object.prototype && prototype !== null) return GENERAL
      const object = value as Record<string, unknown>
      const keys = Object.keys(object)
      let ordered = true
      for (let i = 0; i < keys.length && ordered; i++) {
        const key = keys[i] as string
        const item = inCanonicalOrder(object[key], depth + 1)
        if (item === GENERAL) return GENERAL
        ordered = item === object[key] && (i === 0 || (keys[i - 1] as string) < key)
      }
      if (ordered) return value
      const copy: Record<string, unknown> = {}
      keys.sort()
      for (const key of keys) {
        const item = inCanonicalOrder(object[key], depth + 1)
        if (item === GENERAL) return GENERAL
        copy[key] = item
      }
      // An object holds integer-like keys in ascending numeric order whatever order they are added in, and assigning
      // __proto__ sets its prototype: for such keys the copy's keys are not the sorted ones.
      return Object.keys(copy).every((key, i) => key === keys[i]) ? copy : GENERAL
    }
    default:
      return GENERAL
  }
}

/**
 * RFC 8785 canonical JSON: the same bytes as `canonicalize` for every value, and the same errors. Plain JSON values
 * (what the chains hash: records from the database, details parsed from JSON) are put in canonical key order and
 * written by the engine's own JSON.stringify, which writes strings and numbers exactly as RFC 8785 does; building
 * the text key by key in JavaScript was most of a chain verification's time.
 */
export function canonicalJson(value: unknown): string {
  const ordered = inCanonicalOrder(value, 0)
  const text = ordered === GENERAL ? undefined : JSON.stringify(ordered)
  // JSON.stringify escapes a lone surrogate (\ud800-\udfff), which RFC 8785 refuses: any text that may hold one (a
  // lone surrogate, or a backslash followed by "ud" in a string) goes to the general serializer, which throws for it.
  return text === undefined || text.includes('\\ud') ? (canonicalize(value) as string) : text
}
