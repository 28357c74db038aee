/**
 * One wire schema (issue 19) for query strings: a client method passes its route's query as the `Static` type of the
 * contract's query schema, and `call` writes it. These show what reaches the server for the list methods, and (by
 * `@ts-expect-error`, which `npm run typecheck` rejects once the line compiles) that a query the server's schema
 * refuses does not compile.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { StaffClient } from '../client.ts'
import { StaffToken } from '../credentials.ts'

/** A staff client whose requests are recorded (path and query, as sent) and answered with `answer`. */
function recordingClient(answer: unknown) {
  const sent: string[] = []
  const client = new StaffClient({
    baseUrl: 'https://bank.example',
    credentials: new StaffToken('srs_test'),
    fetch: async (url) => {
      const { pathname, search } = new URL(String(url))
      sent.push(pathname + search)
      return Response.json(answer)
    },
  })
  return { client, sent }
}

const conversationId = 'cnv_AAAAAAAAAAAAAAAAAAAAAA'

test('a list method sends the parameters it is given, leaves out undefined ones, and sends no ? without any', async () => {
  const { client, sent } = recordingClient({ conversations: [], messages: [], consents: [], reports: [] })
  await client.listConversations({ limit: 5, before: undefined, scope: 'all' })
  await client.listConversations()
  await client.listMessages(conversationId, { after: 7 })
  await client.listPublicMessages(conversationId, { after: 0, limit: 1 })
  await client.listConsents(conversationId)
  await client.listConsents(conversationId, 3)
  await client.listSuspiciousReports('resolved')
  assert.deepEqual(sent, [
    '/v1/conversations?limit=5&scope=all',
    '/v1/conversations',
    `/v1/conversations/${conversationId}/messages?after=7`,
    `/v1/conversations/${conversationId}/public-messages?after=0&limit=1`,
    `/v1/consents?conversationId=${conversationId}`,
    `/v1/consents?conversationId=${conversationId}&limit=3`,
    '/v1/suspicious-reports?status=resolved',
  ])
})

test('an archive search sends its dates as ISO 8601 instants and its text URL-encoded', async () => {
  const { client, sent } = recordingClient({ records: [], next: null, scanned: 0 })
  await client.searchArchive({
    conversationId,
    from: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
    text: 'card & pin',
    recordClass: 'public-message',
  })
  assert.deepEqual(sent, [
    `/v1/archive/records?conversationId=${conversationId}&text=card+%26+pin&recordClass=public-message&from=2026-01-02T03%3A04%3A05.000Z`,
  ])
})

test('a conversation search sends its page (20 from the first unless told) with the words', async () => {
  const { client, sent } = recordingClient({ hits: [], total: 0 })
  await client.searchConversations('Ann Smith')
  await client.searchConversations('Ann', { offset: 40 })
  assert.deepEqual(sent, [
    '/v1/search/conversations?q=Ann+Smith&limit=20&offset=0',
    '/v1/search/conversations?q=Ann&limit=20&offset=40',
  ])
})

/**
 * Queries the routes' schemas refuse, which must not compile: `npm run typecheck` fails on an `@ts-expect-error` whose
 * line compiles, so a schema loosened under these calls, or a `call` that stopped checking its query, fails there.
 * Type-checked, never run.
 */
export function refusedQueries(client: StaffClient) {
  return [
    // @ts-expect-error: `limit` is an integer in ConversationListQuery, not a string
    client.call('GET /v1/conversations', { query: { limit: '5' } }),
    // @ts-expect-error: ConversationListQuery has no `nickname`
    client.call('GET /v1/conversations', { query: { nickname: 'Ann' } }),
    // @ts-expect-error: `scope` is `member` or `all`
    client.call('GET /v1/conversations', { query: { scope: 'everyone' } }),
    // @ts-expect-error: ConversationSearchQuery requires `q`
    client.call('GET /v1/search/conversations', { query: { limit: 5 } }),
    // @ts-expect-error: GET /v1/me reads no query
    client.call('GET /v1/me', { query: { limit: 5 } }),
    // @ts-expect-error: `recordClass` is one of the retained record classes
    client.searchArchive({ recordClass: 'everything' }),
  ]
}
