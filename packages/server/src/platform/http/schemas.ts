import { type TUnsafe, Type } from '@sinclair/typebox'

/** NUL, a high surrogate with no low one after it, or a low surrogate with no high one before it. */
const UNSTORABLE_TEXT = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * Whether a value (a request's body, query or path parameters; a stream frame) carries text PostgreSQL cannot store
 * (a NUL character) or that is not Unicode at all (an unpaired surrogate, which a driver would silently replace),
 * anywhere in it, keys included.
 */
export function hasUnstorableText(value: unknown): boolean {
  if (typeof value === 'string') return UNSTORABLE_TEXT.test(value)
  if (value === null || typeof value !== 'object') return false
  if (Array.isArray(value)) return value.some(hasUnstorableText)
  for (const [key, inner] of Object.entries(value)) {
    if (hasUnstorableText(key) || hasUnstorableText(inner)) return true
  }
  return false
}

/** A string that is one of a fixed list, typed as that list's union. */
export function oneOf<T extends string>(values: readonly T[]): TUnsafe<T> {
  return Type.Unsafe<T>({ type: 'string', enum: [...values] })
}

/** Schemas every capability shares: ids by kind, and the problem document. */
export const idOf = (prefix: string) => Type.String({ pattern: `^${prefix}_[A-Za-z0-9_-]{22}$` })

export const ProblemSchema = Type.Object(
  {
    type: Type.String({ format: 'uri' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.Optional(Type.String()),
    instance: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
    currentEpoch: Type.Optional(Type.Integer({ description: 'On an MLS epoch conflict, the group’s current epoch' })),
    wipeCommand: Type.Optional(
      Type.String({ description: 'To a revoked device: a JWS (ES256) that orders it to erase its local store' }),
    ),
  },
  { $id: 'Problem', description: 'RFC 9457 problem details' },
)

/** The error responses a route may give, for the OpenAPI document. */
export const problemResponses = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [s, { ...ProblemSchema, description: 'application/problem+json' }]))
