import { type Kysely, sql } from 'kysely'
import type { ServerContext } from '../platform/context.ts'
import type { Database } from '../platform/db/schema.ts'
import { searchTerms, wordsOf } from '../platform/keyring/search-terms.ts'
import { ADDRESS_INDEX } from './identities.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring'>
const TEXT_TERM = 'channel_messages.text.word'

/**
 * Indexes the words of a public-channel message for the console's search, as blind terms, in the caller's
 * transaction. Inbound text is indexed as stored, after DLP masking: a card number is never a term.
 */
export async function indexPublicText(
  ctx: Ctx,
  message: { tenantId: string; conversationId: string; seq: number },
  text: string,
): Promise<void> {
  const terms = await searchTerms(ctx.keyring, message.tenantId, TEXT_TERM, wordsOf(text))
  if (terms.length === 0) return
  await ctx.db
    .insertInto('channel_message_terms')
    .values(
      terms.map((term) => ({
        tenant_id: message.tenantId,
        term,
        conversation_id: message.conversationId,
        seq: message.seq,
      })),
    )
    .onConflict((oc) => oc.doNothing())
    .execute()
}

/**
 * Forgets the search terms of messages whose text is gone (their ciphertext expired): a term must not find a message
 * that no longer exists, nor outlive its text.
 */
export async function forgetPublicTexts(
  db: Kysely<Database>,
  messages: { tenantId: string; conversationId: string; seq: string }[],
): Promise<void> {
  if (messages.length === 0) return
  await sql`
    delete from channel_message_terms t
    using unnest(${messages.map((m) => m.tenantId)}::text[], ${messages.map((m) => m.conversationId)}::text[],
                 ${messages.map((m) => m.seq)}::bigint[]) as d (tenant_id, conversation_id, seq)
    where t.tenant_id = d.tenant_id and t.conversation_id = d.conversation_id and t.seq = d.seq
  `.execute(db)
}

/** Forgets the search terms of every public message in a customer's conversations (a data-subject erasure). */
export async function forgetCustomerPublicTexts(db: Kysely<Database>, tenantId: string, customerId: string) {
  await db
    .deleteFrom('channel_message_terms')
    .where('tenant_id', '=', tenantId)
    .where('conversation_id', 'in', (eb) =>
      eb
        .selectFrom('channel_identities')
        .select('conversation_id')
        .where('tenant_id', '=', tenantId)
        .where('customer_id', '=', customerId),
    )
    .execute()
}

/**
 * The public-channel messages of the tenant holding every one of these words (whole words, case and accents
 * ignored), newest first: a conversation and the sequence number of the message in it.
 */
export async function publicMessagesByWords(
  ctx: Ctx,
  tenantId: string,
  words: string[],
  limit: number,
): Promise<{ conversationId: string; seq: number }[]> {
  if (words.length === 0) return []
  const terms = await searchTerms(ctx.keyring, tenantId, TEXT_TERM, words)
  const rows = await ctx.db
    .selectFrom('channel_message_terms')
    .select(['conversation_id', 'seq'])
    .where('tenant_id', '=', tenantId)
    .where('term', 'in', terms)
    .groupBy(['conversation_id', 'seq'])
    .having((eb) => eb.fn.count('term').distinct(), '=', terms.length)
    .orderBy('seq', 'desc')
    .limit(limit)
    .execute()
  return rows.map((r) => ({ conversationId: r.conversation_id, seq: Number(r.seq) }))
}

/** The public conversations with this phone number (E.164) on SMS, WhatsApp or RCS, linked to a customer or not. */
export async function publicConversationsByPhoneNumber(ctx: Ctx, tenantId: string, phoneNumber: string) {
  const addresses = ['twilio', 'smpp', 'rbm'].map((connector) => `${connector}:${phoneNumber}`)
  addresses.push(`whatsapp:${phoneNumber.slice(1)}`)
  const indexes = await Promise.all(addresses.map((a) => ctx.keyring.blindIndex(tenantId, ADDRESS_INDEX, a)))
  const rows = await ctx.db
    .selectFrom('channel_identities')
    .select(['conversation_id', 'customer_id'])
    .where('tenant_id', '=', tenantId)
    .where('address_index', 'in', indexes)
    .execute()
  return rows.map((r) => ({ conversationId: r.conversation_id, customerId: r.customer_id }))
}
