import type { ServerContext } from '../platform/context.ts'
import { allow, forBrowsers, type GuardedAction, inConversation } from '../platform/http/access-rule.ts'
import { type Principal, principalMember } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import type { AppendResult, MessageLog } from './message-log.ts'

/**
 * The rules of the message actions, whichever way they arrive. The HTTP route declares its action's rule, and the
 * stream holds a frame to the same one, through the same guard: `read` when a stream signs in (it then delivers),
 * `send` for a send frame, `mark` for an ack frame (it moves the delivered marker, as POST …/markers does).
 */
export const messageActions = {
  read: {
    route: 'GET /v1/conversations/:conversationId/messages',
    access: inConversation(allow.member('conversations:read')),
  },
  send: {
    route: 'POST /v1/conversations/:conversationId/messages',
    access: forBrowsers('chat', inConversation(allow.member('conversations:write'))),
  },
  mark: {
    route: 'POST /v1/conversations/:conversationId/markers',
    access: forBrowsers('chat', inConversation(allow.member('conversations:read'))),
  },
} as const satisfies Record<string, GuardedAction>

/** The stream's own rule (`GET /v1/stream`): it signs in with its first frame; a browser streams where it may chat. */
export const streamAccess = forBrowsers('chat', allow.stream)

/** A message as the client sends it, over HTTP or the stream: the ciphertext base64, the expiry an ISO time. */
export interface MessageToSend {
  conversationId: string
  clientMessageId: string
  contentType: string
  ciphertext: string
  expiresAt?: string | undefined
}

/**
 * Appends a message for a principal the `send` rule admitted (a member of the conversation): a ciphertext within the
 * size limit, an expiry in the future.
 */
export async function sendMessage(
  ctx: Pick<ServerContext, 'config'>,
  messageLog: MessageLog,
  principal: Principal,
  input: MessageToSend,
): Promise<AppendResult> {
  const ciphertext = Buffer.from(input.ciphertext, 'base64')
  if (ciphertext.length > ctx.config.maxMessageBytes) throw new Problem('conversations/message-too-large')
  return messageLog.append({
    tenantId: principal.tenantId,
    conversationId: input.conversationId,
    sender: principalMember(principal),
    clientMessageId: input.clientMessageId,
    contentType: input.contentType,
    ciphertext,
    expiresAt: parseExpiry(input.expiresAt),
  })
}

function parseExpiry(value: string | undefined): Date | null {
  if (value === undefined) return null
  const expiresAt = new Date(value)
  if (Number.isNaN(expiresAt.getTime()) || expiresAt.getTime() <= Date.now()) {
    throw new Problem('request/invalid', 'expiresAt must be a time in the future')
  }
  return expiresAt
}
