import { canonicalJson } from '../platform/canonical-json.ts'
import { chainHash } from '../platform/hash-chain/linker.ts'

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
  // Keys in canonical order, so canonicalJson writes the object as it is.
  return canonicalJson({
    action: record.action,
    actor: { id: record.actor_id, kind: record.actor_kind },
    details: JSON.parse(record.details),
    occurredAt: new Date(record.occurred_at).toISOString(),
    outcome: record.outcome,
    reason: record.reason,
    seq: Number(record.seq),
    target: record.target_kind === null ? null : { id: record.target_id, kind: record.target_kind },
    tenantId: record.tenant_id,
  })
}

/** SHA-256(previous record's hash || canonical JSON of this record): change, drop or move one and the links break. */
export function recordHash(previous: Uint8Array, record: ChainedRecord): Buffer {
  return chainHash(previous, canonicalRecord(record))
}
