import { type Static, Type } from '@sinclair/typebox'

/** The wire formats of the security event log (`GET /v1/audit/events`). Re-exported by `@strongroom/sdk/protocol`. */

/** An event of the tenant's audit log; `seq` and `hash` are null for an event not chained yet. */
export const AuditEvent = Type.Object({
  seq: Type.Union([Type.Integer(), Type.Null()]),
  occurredAt: Type.String(),
  actor: Type.Object({ kind: Type.String(), id: Type.Union([Type.String(), Type.Null()]) }),
  action: Type.String(),
  target: Type.Union([Type.Object({ kind: Type.String(), id: Type.Union([Type.String(), Type.Null()]) }), Type.Null()]),
  outcome: Type.String(),
  reason: Type.Union([Type.String(), Type.Null()]),
  details: Type.Record(Type.String(), Type.Unknown()),
  hash: Type.Union([Type.String(), Type.Null()], { description: 'hex SHA-256 linking this record to the one before' }),
})
export type AuditEvent = Static<typeof AuditEvent>
export const AuditEventList = Type.Object({ events: Type.Array(AuditEvent) })

/** A page of the audit log, in chain order: the events after a sequence number. */
export const AuditEventQuery = Type.Object(
  {
    after: Type.Optional(Type.Integer({ minimum: 0 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  },
  { additionalProperties: false },
)
export type AuditEventQuery = Static<typeof AuditEventQuery>
