import { Type } from '@sinclair/typebox'
import {
  Assignment,
  Conversation,
  ConversationList,
  ConversationListQuery,
  MarkerUpdate,
  Message,
  MessageList,
  MessageListQuery,
  NewConversation,
  NewMember,
  OutgoingMessageBody,
  StatusChange,
} from '@strongroom/sdk/protocol'
import { IdempotencyKeyHeaders, idempotent } from '../idempotency/idempotency.ts'
import type { ServerContext } from '../platform/context.ts'
import { allow, inConversation } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf, principalMember } from '../platform/http/principal.ts'
import { principalOf, requestHtu } from '../platform/http/request.ts'
import { idOf, problemResponses } from '../platform/http/schemas.ts'
import { assignConversation } from './assignment.ts'
import { setConversationStatus } from './conversation-status.ts'
import { addMember, createConversation, getConversation, listConversations, updateMarkers } from './conversations.ts'
import { messageActions, sendMessage, streamAccess } from './message-actions.ts'
import type { MessageLog } from './message-log.ts'
import { fetchMessages } from './messages.ts'
import type { StreamHub } from './stream-hub.ts'

const ConversationParams = Type.Object({ conversationId: idOf('cnv') })

export async function conversationRoutes(
  app: App,
  ctx: ServerContext,
  deps: { messageLog: MessageLog; hub: StreamHub },
): Promise<void> {
  await conversationListRoutes(app, ctx)
  await membershipRoutes(app, ctx)
  await statusRoutes(app, ctx)
  await messageRoutes(app, ctx, deps)
  await markerAndStreamRoutes(app, ctx, deps)
}

/** Creating, listing and reading conversations. */
async function conversationListRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/conversations',
    {
      config: { access: allow.staff('conversations:write') },
      schema: {
        summary:
          "Open a conversation with a customer; the customer's active devices and the assigned staff member (by default the caller) join",
        tags: ['conversations'],
        body: NewConversation,
        headers: IdempotencyKeyHeaders,
        response: { 201: Conversation, ...problemResponses(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      // Unless someone else is assigned, whoever opens the conversation takes it.
      const assignedStaffId =
        request.body.assignedStaffId ?? (principal.kind === 'staff' ? principal.staffId : undefined)
      return idempotent(ctx, request, reply, 201, (scoped) =>
        createConversation(scoped, principal.tenantId, { ...request.body, assignedStaffId }),
      )
    },
  )

  app.get(
    '/v1/conversations',
    {
      config: { access: allow.member('conversations:read') },
      schema: {
        summary:
          'The conversations the caller is a member of, newest first; `before` the last of a page for the next. ' +
          'With scope=all, every conversation of the tenant (staff holding conversations:all).',
        tags: ['conversations'],
        querystring: ConversationListQuery,
        response: {
          200: ConversationList,
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request) => ({ conversations: await listConversations(ctx, principalOf(request), request.query) }),
  )

  app.get(
    '/v1/conversations/:conversationId',
    {
      config: { access: allow.member('conversations:read') },
      schema: {
        summary: 'A conversation and its members',
        tags: ['conversations'],
        params: ConversationParams,
        response: { 200: Conversation, ...problemResponses(401, 404) },
      },
    },
    async (request) => getConversation(ctx, principalOf(request), request.params.conversationId),
  )
}

/** Adding members, and assigning a conversation to an agent. */
async function membershipRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/conversations/:conversationId/members',
    {
      config: { access: inConversation(allow.staff('conversations:write')) },
      schema: {
        summary: "Add a staff member, or a device of the conversation's customer",
        tags: ['conversations'],
        params: ConversationParams,
        body: NewMember,
        response: { 204: Type.Null(), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      await addMember(ctx, principal.tenantId, request.params.conversationId, request.body)
      return reply.status(204).send(null)
    },
  )

  app.put(
    '/v1/conversations/:conversationId/assignment',
    {
      config: { access: allow.staff('conversations:assign') },
      schema: {
        summary:
          'Give a conversation to another agent, who joins it: `reassign` keeps the previous assignee a member, `transfer` takes them out (audited)',
        tags: ['conversations'],
        params: ConversationParams,
        body: Assignment,
        response: { 200: Conversation, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const { conversationId } = request.params
      await assignConversation(ctx, principal.tenantId, conversationId, request.body, actorOf(principal))
      return getConversation(ctx, principal, conversationId)
    },
  )
}

/** Open, pending and resolved. */
async function statusRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.put(
    '/v1/conversations/:conversationId/status',
    {
      config: { access: inConversation(allow.staff('conversations:write')) },
      schema: {
        summary:
          'Mark a conversation open, pending (waiting on the customer) or resolved (audited); the customer’s next ' +
          'message reopens it',
        tags: ['conversations'],
        params: ConversationParams,
        body: StatusChange,
        response: { 200: Conversation, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const { conversationId } = request.params
      await setConversationStatus(ctx, principal.tenantId, conversationId, request.body.status, actorOf(principal))
      return getConversation(ctx, principal, conversationId)
    },
  )
}

/** Sending and reading the message log. */
async function messageRoutes(
  app: App,
  ctx: ServerContext,
  deps: { messageLog: MessageLog; hub: StreamHub },
): Promise<void> {
  app.post(
    '/v1/conversations/:conversationId/messages',
    {
      config: { access: messageActions.send.access },
      schema: {
        summary: 'Append a message; the same clientMessageId returns the same message instead of a duplicate',
        tags: ['conversations'],
        params: ConversationParams,
        body: OutgoingMessageBody,
        response: { 200: Message, 201: Message, ...problemResponses(400, 401, 403, 404, 409, 413) },
      },
    },
    async (request, reply) => {
      const { conversationId } = request.params
      const { message, created } = await sendMessage(ctx, deps.messageLog, principalOf(request), {
        conversationId,
        ...request.body,
      })
      return reply.status(created ? 201 : 200).send(message)
    },
  )

  app.get(
    '/v1/conversations/:conversationId/messages',
    {
      config: { access: messageActions.read.access },
      schema: {
        summary: 'Messages after a sequence number, in order',
        tags: ['conversations'],
        params: ConversationParams,
        querystring: MessageListQuery,
        response: { 200: MessageList, ...problemResponses(400, 401, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const messages = await fetchMessages(ctx, principal.tenantId, request.params.conversationId, {
        afterSeq: request.query.after ?? 0,
        untilSeq: request.query.until,
        limit: request.query.limit ?? 100,
      })
      return { messages }
    },
  )
}

/** Read markers, and the realtime stream. */
async function markerAndStreamRoutes(
  app: App,
  ctx: ServerContext,
  deps: { messageLog: MessageLog; hub: StreamHub },
): Promise<void> {
  app.post(
    '/v1/conversations/:conversationId/markers',
    {
      config: { access: messageActions.mark.access },
      schema: {
        summary: "Move the caller's delivered and read markers forward",
        tags: ['conversations'],
        params: ConversationParams,
        body: MarkerUpdate,
        response: { 204: Type.Null(), ...problemResponses(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      await updateMarkers(
        ctx,
        principal.tenantId,
        request.params.conversationId,
        principalMember(principal),
        request.body,
      )
      return reply.status(204).send(null)
    },
  )

  app.get(
    '/v1/stream',
    {
      config: { access: streamAccess },
      websocket: true,
      schema: {
        summary: 'Realtime stream (WebSocket): authenticate in the first frame, then receive and send messages',
        tags: ['conversations'],
      },
    },
    (socket, request) => deps.hub.attach(socket, request.raw.socket, requestHtu(request, ctx.config.publicUrl)),
  )
}
