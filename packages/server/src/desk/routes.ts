import { Type } from '@sinclair/typebox'
import {
  CannedReply,
  CannedReplyInput,
  CannedReplyList,
  ConversationList,
  ConversationNote,
  ConversationSearchQuery,
  NewNote,
  NoteList,
  SearchPage,
} from '@strongroom/sdk/protocol'
import { accessibleConversationIds, customerConversations } from '../conversations/conversations.ts'
import { IdempotencyKeyHeaders, idempotent } from '../idempotency/idempotency.ts'
import { requireCustomer } from '../identity/customers.ts'
import type { ServerContext } from '../platform/context.ts'
import { allow, inConversation } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf, principalMember } from '../platform/http/principal.ts'
import { principalOf } from '../platform/http/request.ts'
import { idOf, problemResponses } from '../platform/http/schemas.ts'
import { deleteCannedReply, listCannedReplies, saveCannedReply } from './canned-replies.ts'
import { addNote, listNotes } from './notes.ts'
import { searchConversations } from './search.ts'

const ConversationParams = Type.Object({ conversationId: idOf('cnv') })
const ReplyParams = Type.Object({ replyId: idOf('cnr') })

export async function deskRoutes(app: App, ctx: ServerContext): Promise<void> {
  await noteRoutes(app, ctx)
  await cannedReplyRoutes(app, ctx)
  await cannedReplyAdminRoutes(app, ctx)
  await findRoutes(app, ctx)
}

/** Internal notes: staff only, beside a conversation, never sent. */
async function noteRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/conversations/:conversationId/notes',
    {
      config: { access: inConversation(allow.staff('conversations:write')) },
      schema: {
        summary:
          'Write an internal note on a conversation: staff see it, the customer never does (it is not a message: ' +
          'it goes to no device, public channel, MLS group or stream); audited without its text',
        tags: ['desk'],
        params: ConversationParams,
        body: NewNote,
        headers: IdempotencyKeyHeaders,
        response: { 201: ConversationNote, ...problemResponses(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const author = principalMember(principal)
      return idempotent(ctx, request, reply, 201, (scoped) =>
        addNote(
          scoped,
          principal.tenantId,
          request.params.conversationId,
          { authorStaffId: author.id, text: request.body.text },
          actorOf(principal),
        ),
      )
    },
  )

  app.get(
    '/v1/conversations/:conversationId/notes',
    {
      config: { access: inConversation(allow.staff('conversations:read')) },
      schema: {
        summary: "A conversation's internal notes, oldest first (staff only)",
        tags: ['desk'],
        params: ConversationParams,
        response: { 200: NoteList, ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      principalMember(principal) // staff members only: a bank backend reads no notes
      return { notes: await listNotes(ctx, principal.tenantId, request.params.conversationId) }
    },
  )
}

/** The bank's canned replies, for agents. */
async function cannedReplyRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/canned-replies',
    {
      config: { access: allow.staff('conversations:write') },
      schema: {
        summary: "The bank's canned replies, by shortcut (an agent types / and the shortcut in the composer)",
        tags: ['desk'],
        response: { 200: CannedReplyList, ...problemResponses(401, 403) },
      },
    },
    async (request) => ({ replies: await listCannedReplies(ctx, principalOf(request).tenantId) }),
  )
}

/** Writing canned replies (replies:manage, which admins hold). */
async function cannedReplyAdminRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/canned-replies',
    {
      config: { access: allow.staff('replies:manage') },
      schema: {
        summary: 'Add a canned reply (audited); its shortcut must be new to the bank',
        tags: ['desk'],
        body: CannedReplyInput,
        headers: IdempotencyKeyHeaders,
        response: { 201: CannedReply, ...problemResponses(400, 401, 403, 409, 422) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      return idempotent(ctx, request, reply, 201, (scoped) =>
        saveCannedReply(scoped, principal.tenantId, request.body, actorOf(principal)),
      )
    },
  )

  app.put(
    '/v1/canned-replies/:replyId',
    {
      config: { access: allow.staff('replies:manage') },
      schema: {
        summary: 'Change a canned reply (audited)',
        tags: ['desk'],
        params: ReplyParams,
        body: CannedReplyInput,
        response: { 200: CannedReply, ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const input = { ...request.body, id: request.params.replyId }
      return saveCannedReply(ctx, principal.tenantId, input, actorOf(principal))
    },
  )

  app.delete(
    '/v1/canned-replies/:replyId',
    {
      config: { access: allow.staff('replies:manage') },
      schema: {
        summary: 'Remove a canned reply (audited)',
        tags: ['desk'],
        params: ReplyParams,
        response: { 204: Type.Null(), ...problemResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      await deleteCannedReply(ctx, principal.tenantId, request.params.replyId, actorOf(principal))
      return reply.status(204).send(null)
    },
  )
}

/** Finding customers and what they wrote; one customer's conversations on every channel. */
async function findRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/search/conversations',
    {
      config: { access: allow.staff('conversations:read') },
      schema: {
        summary:
          'Find customers by a word of their name or their phone number (E.164, with the country code), and what ' +
          'they wrote on public channels by its words; among the conversations the caller sees, grouped by ' +
          'customer, most recent first, a page at a time (audited, without what was typed)',
        tags: ['desk'],
        querystring: ConversationSearchQuery,
        response: { 200: SearchPage, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) =>
      searchConversations(ctx, principalOf(request), {
        q: request.query.q,
        limit: request.query.limit ?? 20,
        offset: request.query.offset ?? 0,
      }),
  )

  app.get(
    '/v1/customers/:customerId/conversations',
    {
      config: { access: allow.staff('conversations:read') },
      schema: {
        summary:
          "A customer's conversations on every channel (SMS, WhatsApp, Messenger, RCS, secure) that the caller " +
          'sees, oldest first: what one timeline is made of',
        tags: ['desk'],
        params: Type.Object({ customerId: idOf('cus') }),
        response: {
          200: ConversationList,
          ...problemResponses(401, 403, 404),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      await requireCustomer(ctx, principal.tenantId, request.params.customerId)
      const all = await customerConversations(ctx, principal.tenantId, request.params.customerId)
      const visible = await accessibleConversationIds(
        ctx,
        principal,
        all.map((c) => c.id),
      )
      return { conversations: all.filter((c) => visible.has(c.id)) }
    },
  )
}
