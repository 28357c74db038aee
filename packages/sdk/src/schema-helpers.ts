import { type TUnsafe, Type, type UnsafeOptions } from '@sinclair/typebox'

/** One of these strings, as a JSON Schema `enum` (what the OpenAPI document shows), typed as their union. */
export function oneOf<T extends string>(values: readonly T[], options: UnsafeOptions = {}): TUnsafe<T> {
  return Type.Unsafe<T>({ ...options, type: 'string', enum: [...values] })
}

/** An id of this kind (`cus_…`, `cnv_…`): its prefix and 22 base64url characters. */
export const idOf = (prefix: string) => Type.String({ pattern: `^${prefix}_[A-Za-z0-9_-]{22}$` })
