import { Type } from '@sinclair/typebox'
import { allow } from '../platform/http/access-rule.ts'
import { SCIM_PATCH_SCHEMA } from './scim.ts'

/** What the SCIM routes share: their media type, who may call them, their error and PATCH bodies. */
export const SCIM = 'application/scim+json'

/** The bank's identity provider (a bank backend holding staff:provision) or an admin. */
export const scimAccess = { access: allow.staff('staff:provision') }

const ScimErrorSchema = Type.Object({
  schemas: Type.Array(Type.String()),
  status: Type.String(),
  scimType: Type.Optional(Type.String()),
  detail: Type.Optional(Type.String()),
})

/** The statuses a route answers itself, and those any request may meet (too large, not JSON, rate-limited, busy). */
export const scimErrors = (...statuses: number[]) =>
  Object.fromEntries([...statuses, 413, 415, 429, 503].map((s) => [s, ScimErrorSchema]))

/** A PATCH (RFC 7644 §3.5.2): the operations are checked by the resource's own patch function. */
export const ScimPatchBody = Type.Object({
  schemas: Type.Array(Type.Literal(SCIM_PATCH_SCHEMA), { minItems: 1, maxItems: 1 }),
  Operations: Type.Array(
    Type.Object({
      op: Type.String({ maxLength: 10 }),
      path: Type.Optional(Type.String({ maxLength: 200 })),
      value: Type.Optional(Type.Unknown()),
    }),
    { minItems: 1, maxItems: 50 },
  ),
})

/** Where a list starts and how long it is (RFC 7644 §3.4.2.4). */
export const ScimPage = {
  startIndex: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  count: Type.Optional(Type.Integer({ minimum: 0, maximum: 200 })),
}
