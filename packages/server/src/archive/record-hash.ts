import { canonicalJson } from '../platform/canonical-json.ts'
import { chainHash } from '../platform/hash-chain/linker.ts'

/** An archive record as its chain hash covers it: metadata and the hashes of its content, never a key. */
export interface ArchiveChainedRecord {
  tenant_id: string
  seq: number | string | null
  record_class: string
  source_ref: string
  conversation_id: string | null
  conversation_seq: number | string | null
  customer_id: string | null
  occurred_at: Date | string
  key_id: string | null
  content_hash: Uint8Array | null
  content_digest: Uint8Array | null
  details: string
}

const hex = (bytes: Uint8Array | null) => (bytes === null ? null : Buffer.from(bytes).toString('hex'))

/** The record's fields as exported and hashed (RFC 8785 canonical JSON of exactly this object). */
export function chainedFields(record: ArchiveChainedRecord) {
  // Keys in canonical order, so canonicalJson writes the object as it is.
  return {
    contentDigest: hex(record.content_digest),
    contentHash: hex(record.content_hash),
    conversationId: record.conversation_id,
    conversationSeq: record.conversation_seq === null ? null : Number(record.conversation_seq),
    customerId: record.customer_id,
    details: JSON.parse(record.details) as Record<string, unknown>,
    keyId: record.key_id,
    occurredAt: new Date(record.occurred_at).toISOString(),
    recordClass: record.record_class,
    seq: Number(record.seq),
    sourceRef: record.source_ref,
    tenantId: record.tenant_id,
  }
}

export type ChainedFields = ReturnType<typeof chainedFields>

/**
 * SHA-256(previous hash || canonical JSON of the record's fields). The fields include SHA-256 of the sealed content
 * (so the chain verifies with no key at all, and altered ciphertext is caught) and the digest of the salted plaintext
 * (so an export verifies offline against the same chain).
 */
export function archiveRecordHash(previous: Uint8Array, fields: ChainedFields): Buffer {
  return chainHash(previous, canonicalJson(fields))
}
