import { createHash } from 'node:crypto'
import canonicalize from 'canonicalize'

/** An audit record as it is hashed: every field but the hashes, in RFC 8785 canonical JSON. */
export interface ChainedRecord {
  tenant_id: string
  seq: number | string | null
  occurred_at: Date | string
  actor_kind: string
  actor_id: string | null
  action: string
  target_kind: string | null
  target_id: string | null
  outcome: string
  reason: string | null
  details: string
}

/** The record as its hash covers it: RFC 8785 canonical JSON of every field but the hashes. */
export function canonicalRecord(record: ChainedRecord): string {
  return canonicalize({
    tenantId: record.tenant_id,
    seq: Number(record.seq),
    occurredAt: new Date(record.occurred_at).toISOString(),
    actor: { kind: record.actor_kind, id: record.actor_id },
    action: record.action,
    target: record.target_kind === null ? null : { kind: record.target_kind, id: record.target_id },
    outcome: record.outcome,
    reason: record.reason,
    details: JSON.parse(record.details),
  }) as string
}

/** SHA-256(previous record's hash || canonical JSON of this record): change, drop or move one and the links break. */
export function recordHash(previous: Uint8Array, record: ChainedRecord): Buffer {
  return createHash('sha256').update(previous).update(canonicalRecord(record), 'utf8').digest()
}
