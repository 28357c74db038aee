import type { Kysely } from 'kysely'
import type { Database } from '../platform/db/schema.ts'

/** A message of a secure conversation, by tenant, conversation and seq. */
export interface ConversationSeqRef {
  tenantId: string
  conversationId: string
  seq: bigint | number | string
}

/**
 * Which of these messages the compliance archive holds a record of (a secure message or membership change the
 * archive member read, or a public-channel message), as `tenant/conversation/seq` keys. Live data may delete a
 * message only once this says the archive has it: the archive member's reading position is its own, so this asks the
 * records themselves.
 */
export async function archivedConversationSeqs(db: Kysely<Database>, refs: ConversationSeqRef[]): Promise<Set<string>> {
  const archived = new Set<string>()
  const wanted = new Set(refs.map((ref) => archivedKey(ref.tenantId, ref.conversationId, ref.seq)))
  const byTenant = new Map<string, ConversationSeqRef[]>()
  for (const ref of refs) byTenant.set(ref.tenantId, [...(byTenant.get(ref.tenantId) ?? []), ref])
  for (const [tenantId, tenantRefs] of byTenant) {
    const rows = await db
      .selectFrom('archive_records')
      .select(['conversation_id', 'conversation_seq'])
      .where('tenant_id', '=', tenantId)
      .where('record_class', 'in', ['secure-message', 'membership-change', 'public-message'])
      .where('conversation_id', 'in', [...new Set(tenantRefs.map((ref) => ref.conversationId))])
      .where('conversation_seq', 'in', [...new Set(tenantRefs.map((ref) => String(ref.seq)))])
      .execute()
    for (const row of rows) {
      const key = archivedKey(tenantId, row.conversation_id ?? '', row.conversation_seq ?? '')
      if (wanted.has(key)) archived.add(key)
    }
  }
  return archived
}

export function archivedKey(tenantId: string, conversationId: string, seq: bigint | number | string): string {
  return `${tenantId}/${conversationId}/${String(seq)}`
}
