import { Type } from '@sinclair/typebox'

/** NUL, a high surrogate with no low one after it, or a low surrogate with no high one before it. */
const UNSTORABLE_TEXT = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * Whether a value (a request's body, query or path parameters; a stream frame) carries text PostgreSQL cannot store
 * (a NUL character) or that is not Unicode at all (an unpaired surrogate, which a driver would silently replace),
 * anywhere in it, keys included.
 */
export function hasUnstorableText(value: unknown): boolean {
  // A walk with a stack of its own, not recursion: a body of a few kilobytes nested thousands deep ("[[[[…") would
  // otherwise overflow the call stack, and the request would end as a 500 instead of the schema's 400.
  const pending: unknown[] = [value]
  while (pending.length > 0) {
    const item = pending.pop()
    if (typeof item === 'string') {
      if (UNSTORABLE_TEXT.test(item)) return true
    } else if (Array.isArray(item)) {
      for (const inner of item) pending.push(inner)
    } else if (item !== null && typeof item === 'object') {
      for (const [key, inner] of Object.entries(item)) {
        if (UNSTORABLE_TEXT.test(key)) return true
        pending.push(inner)
      }
    }
  }
  return false
}

/**
 * A string that is one of a fixed list, typed as that list's union, and an id by kind: the SDK's protocol defines them
 * for both.
 */
export { idOf, oneOf } from '@strongroom/sdk/protocol'

/** The problem document every capability answers with. */
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
