import {
  SECURE_HISTORY_INFO,
  type SealedHistoryMessage,
  secureHistoryAad,
  secureHistorySuite,
} from '@strongroom/sdk/mls-node'
import { recordAudit } from '../audit/events.ts'
import { isConversationMember } from '../conversations/conversations.ts'
import { actorOf, type Principal } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { type ArchiveContext, archiveKeysOf } from './append.ts'
import { openRecords } from './open-records.ts'

/**
 * A conversation's earlier secure messages for a staff member of it on a device that cannot decrypt them (a new
 * browser, a conversation handed over): the archive, the bank's member of every group, opens what it recorded and
 * seals each message to the key the device made for this request (HPKE), bound to the conversation and seq. Nothing
 * leaves in clear, and only to a human staff member who is a member of the conversation now (a bank backend, a
 * customer's device or an agent it was taken from get nothing); each request is audited with how many it served.
 */
export async function serveSecureHistory(
  ctx: ArchiveContext,
  principal: Principal,
  conversationId: string,
  request: { recipientKey: Uint8Array; after: number; limit: number },
): Promise<{ messages: SealedHistoryMessage[]; next: number | null }> {
  if (principal.kind !== 'staff') throw new Problem('auth/forbidden', 'earlier secure messages are for staff')
  const member = { kind: 'staff' as const, id: principal.staffId }
  if (!(await isConversationMember(ctx, principal.tenantId, conversationId, member))) {
    throw new Problem('request/not-found', 'no such conversation')
  }
  const suite = secureHistorySuite()
  let recipientKey: CryptoKey
  try {
    recipientKey = await suite.kem.deserializePublicKey(Uint8Array.from(request.recipientKey).buffer)
  } catch {
    throw new Problem('request/invalid', 'recipientKey is not an X25519 public key')
  }
  const rows = await ctx.db
    .selectFrom('archive_records')
    .selectAll()
    .where('tenant_id', '=', principal.tenantId)
    .where('conversation_id', '=', conversationId)
    .where('record_class', '=', 'secure-message')
    .where('conversation_seq', '>', String(request.after))
    .orderBy('conversation_seq')
    .limit(request.limit)
    .execute()
  const opened = await openRecords(archiveKeysOf(ctx), principal.tenantId, rows)
  const messages: SealedHistoryMessage[] = []
  for (const { row, content } of opened) {
    // Deleted after retention or erased with the customer's key: not the archive's to give any more.
    if (!content || typeof content.text !== 'string') continue
    const seq = Number(row.conversation_seq)
    const plaintext = new TextEncoder().encode(
      JSON.stringify({ sender: content.sender, text: content.text, sentAt: new Date(row.occurred_at).toISOString() }),
    )
    const sealed = await suite.seal(
      { recipientPublicKey: recipientKey, info: SECURE_HISTORY_INFO },
      plaintext,
      secureHistoryAad(conversationId, seq),
    )
    messages.push({
      seq,
      enc: Buffer.from(sealed.enc).toString('base64'),
      ciphertext: Buffer.from(sealed.ct).toString('base64'),
    })
  }
  await recordAudit(ctx.db, {
    tenantId: principal.tenantId,
    actor: actorOf(principal),
    action: 'archive.history.serve',
    target: { kind: 'conversation', id: conversationId },
    outcome: 'success',
    details: { after: request.after, messages: messages.length },
  })
  const next = rows.length === request.limit ? Number(rows.at(-1)?.conversation_seq) : null
  return { messages, next }
}
