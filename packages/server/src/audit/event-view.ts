import type { Selectable } from 'kysely'
import type { AuditEventsTable } from '../platform/db/schema.ts'

/** An audit event as staff read it; `seq` is null for the moments before the chainer links it. */
export interface AuditEventView {
  seq: number | null
  occurredAt: string
  actor: { kind: string; id: string | null }
  action: string
  target: { kind: string; id: string | null } | null
  outcome: string
  reason: string | null
  details: Record<string, unknown>
  hash: string | null
}

export function toAuditEventView(row: Selectable<AuditEventsTable>): AuditEventView {
  return {
    seq: row.seq === null ? null : Number(row.seq),
    occurredAt: new Date(row.occurred_at).toISOString(),
    actor: { kind: row.actor_kind, id: row.actor_id },
    action: row.action,
    target: row.target_kind === null ? null : { kind: row.target_kind, id: row.target_id },
    outcome: row.outcome,
    reason: row.reason,
    details: JSON.parse(row.details),
    hash: row.hash === null ? null : Buffer.from(row.hash).toString('hex'),
  }
}
