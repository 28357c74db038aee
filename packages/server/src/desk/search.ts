import type { SearchHit } from '@strongroom/sdk/protocol'
import { recordAudit } from '../audit/events.ts'
import { publicConversationsByPhoneNumber, publicMessagesByWords } from '../channels/message-search.ts'
import { accessibleConversationIds, conversationSummaries } from '../conversations/conversations.ts'
import { customerIdsByName } from '../identity/customer-search.ts'
import { customerIdsByPhoneNumber } from '../identity/customers.ts'
import type { ServerContext } from '../platform/context.ts'
import { actorOf, type Principal } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { MAX_TERMS, wordsOf } from '../platform/keyring/search-terms.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring'>
type MatchKind = SearchHit['matched'][number]

/** How many names and messages one search considers at most, before grouping and paging. */
const CANDIDATES = 200
const PHONE = /^\+?[0-9][0-9 ().-]{3,20}$/

/** What was typed, as a phone number in E.164 when it reads as one (with its country code), and as words. */
export function parseQuery(q: string): { phoneNumber?: string; words: string[] } {
  const digits = q.replace(/[^0-9]/g, '')
  if (PHONE.test(q.trim()) && digits.length >= 5 && digits.length <= 15) return { phoneNumber: `+${digits}`, words: [] }
  const words = wordsOf(q)
  if (words.length === 0)
    throw new Problem('request/invalid', 'type a name, a phone number or words the customer wrote')
  if (words.length > MAX_TERMS) throw new Problem('request/invalid', 'too many words')
  return { words }
}

/**
 * Finds customers by a word of their name or their phone number, and public-channel messages (SMS, WhatsApp,
 * Messenger, RCS) by the words they hold, among the conversations the caller may see; grouped by customer, most
 * recent first, a page at a time (`offset`). Secure messages are end-to-end encrypted and not searched here.
 * Audited with what kind of search it was, never what was typed.
 */
export async function searchConversations(
  ctx: Ctx,
  principal: Principal,
  input: { q: string; limit: number; offset: number },
): Promise<{ hits: SearchHit[]; next: number | null }> {
  const { tenantId } = principal
  const query = parseQuery(input.q)
  const matches = new Map<string, { kinds: Set<MatchKind>; messages: { conversationId: string; seq: number }[] }>()
  const note = (key: string, kind: MatchKind, message?: { conversationId: string; seq: number }) => {
    const entry = matches.get(key) ?? { kinds: new Set(), messages: [] }
    entry.kinds.add(kind)
    if (message) entry.messages.push(message)
    matches.set(key, entry)
  }
  if (query.phoneNumber) {
    for (const id of await customerIdsByPhoneNumber(ctx, tenantId, query.phoneNumber)) note(`cus:${id}`, 'phone')
    for (const c of await publicConversationsByPhoneNumber(ctx, tenantId, query.phoneNumber)) {
      note(c.customerId ? `cus:${c.customerId}` : `cnv:${c.conversationId}`, 'phone')
    }
  } else {
    for (const id of await customerIdsByName(ctx, tenantId, query.words, CANDIDATES)) note(`cus:${id}`, 'name')
  }
  const messages = query.phoneNumber ? [] : await publicMessagesByWords(ctx, tenantId, query.words, CANDIDATES)
  // A message's customer brings every conversation of theirs, as a name or a phone number does.
  const ofMessages = await conversationSummaries(ctx, tenantId, {
    ids: messages.map((m) => m.conversationId),
    customerIds: [],
  })
  const keys = [...matches.keys()]
  const summaries = await conversationSummaries(ctx, tenantId, {
    ids: [...keys.filter((k) => k.startsWith('cnv:')).map((k) => k.slice(4)), ...ofMessages.map((c) => c.id)],
    customerIds: [
      ...keys.filter((k) => k.startsWith('cus:')).map((k) => k.slice(4)),
      ...ofMessages.flatMap((c) => c.customerId ?? []),
    ],
  })
  const keyOf = new Map(summaries.map((s) => [s.id, s.customerId ? `cus:${s.customerId}` : `cnv:${s.id}`]))
  for (const m of messages) note(keyOf.get(m.conversationId) as string, 'text', m)
  const visible = await accessibleConversationIds(
    ctx,
    principal,
    summaries.map((s) => s.id),
  )
  const hits: SearchHit[] = []
  for (const [key, match] of matches) {
    const own = summaries.filter((s) => visible.has(s.id) && keyOf.get(s.id) === key)
    own.sort((a, b) => Number(b.lastMessageAt) - Number(a.lastMessageAt))
    const latest = own[0]
    // A customer found by name or number with no conversation the caller sees is still found: to be written to first.
    // Never by text alone: that would tell which words a customer wrote in conversations the caller may not see.
    if (!latest && !(key.startsWith('cus:') && (match.kinds.has('name') || match.kinds.has('phone')))) continue
    hits.push({
      customerId: key.startsWith('cus:') ? key.slice(4) : null,
      conversationIds: own.map((s) => s.id),
      matched: [...match.kinds].sort(),
      messages: match.messages.filter((m) => visible.has(m.conversationId)).slice(0, 5),
      lastMessageAt: latest ? latest.lastMessageAt.toISOString() : null,
    })
  }
  hits.sort((a, b) => (b.lastMessageAt ?? '').localeCompare(a.lastMessageAt ?? ''))
  const page = hits.slice(input.offset, input.offset + input.limit)
  await recordAudit(ctx.db, {
    tenantId,
    actor: actorOf(principal),
    action: 'desk.search',
    outcome: 'success',
    details: { by: query.phoneNumber ? 'phone' : 'words', words: query.words.length, results: hits.length },
  })
  return { hits: page, next: input.offset + input.limit < hits.length ? input.offset + input.limit : null }
}
