import { createHash } from 'node:crypto'
import type { PublicMessage } from '@strongroom/sdk/protocol'
import { recordAudit } from '../audit/events.ts'
import type { WireMessage } from '../conversations/bus-events.ts'
import { requireConversationAccess } from '../conversations/conversations.ts'
import type { MessageLog } from '../conversations/message-log.ts'
import { fetchMessages } from '../conversations/messages.ts'
import type { ServerContext } from '../platform/context.ts'
import { actorOf, type Principal } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'
import { type ConnectorEnvironment, connectorFor, findTenantChannel } from './channel-config.ts'
import type { DeliveryReceipt, DeliveryStatus, DeliveryWatermark } from './connectors/connector.ts'
import {
  ConnectorError,
  MessengerWindowClosedError,
  OutsideServiceWindowError,
  ProviderRejectedError,
  ProviderUnavailableError,
} from './connectors/errors.ts'
import { scanText } from './dlp.ts'
import { loadDlpPatterns } from './dlp-policy.ts'
import { type Envelope, IMPORTED_HISTORY_TYPE, openEnvelope, PUBLIC_MESSAGE_TYPE, sealEnvelope } from './envelope.ts'
import { addressOf, type ChannelIdentity, identityOfConversation } from './identities.ts'
import { loadLinkPolicy, requireAllowedLinks } from './link-policy.ts'
import { indexPublicText } from './message-search.ts'
import { messagingWindow } from './messaging-window.ts'
import type { SmppLinks } from './smpp-links.ts'
import type { InboundSmsReplyHandler } from './sms.ts'
import { loadWhatsAppTemplates, templateFor } from './whatsapp-templates.ts'

/** What channels work with, built whole when the server starts (see `openChannels` in channel-services.ts). */
export interface ChannelDeps {
  readonly messageLog: MessageLog
  readonly env: ConnectorEnvironment
  /** Other capabilities' handlers of inbound SMS (consent's SMS yes/no); see `dispatchInboundSmsReply` in sms.ts. */
  readonly smsReplyHandlers: readonly InboundSmsReplyHandler[]
  /** The pivot's invitation to the secure channel, which DLP sends after masking a known customer's message. */
  readonly inviteToSecureChannel: (input: SecureChannelInvitation) => Promise<unknown>
  /** This server's SMPP links. */
  readonly smppLinks: SmppLinks
}

/** An invitation to move a public conversation into the secure channel (the pivot, in pivot/). */
export interface SecureChannelInvitation {
  tenantId: string
  conversationId: string
  createdBy: { kind: 'staff' | 'system'; id: string }
  ttlSeconds?: number | undefined
}

type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'bus' | 'config' | 'log'>

/** Delivery states in the order they are reached; a receipt never moves a message back. */
export type DeliveryState = 'pending' | DeliveryStatus
const RANK: Record<string, number> = { pending: 0, queued: 1, sent: 2, delivered: 3, read: 4, failed: 5 }
const DELIVERED_RANK = 3

export interface SendInput {
  tenantId: string
  conversationId: string
  sender: { kind: 'staff' | 'system'; id: string }
  clientMessageId: string
  text: string
  /** A call-to-action (the pivot link); stored without its URL, which carries a token. */
  link?: { url: string; label: string } | undefined
}

export interface SentPublicMessage {
  messageId: string
  seq: number
  delivery: { status: DeliveryState; providerMessageId: string | null; errorCode: string | null }
}

/** The provider's idempotency key for one of our messages: stable across retries, naming nothing. */
function idempotencyKey(tenantId: string, conversationId: string, clientMessageId: string): string {
  return createHash('sha256').update(`${tenantId}\0${conversationId}\0${clientMessageId}`).digest('hex').slice(0, 48)
}

export async function requirePublicIdentity(ctx: Pick<ServerContext, 'db'>, tenantId: string, conversationId: string) {
  const identity = await identityOfConversation(ctx, tenantId, conversationId)
  if (!identity) throw new Problem('channels/not-public')
  return identity
}

/**
 * Sends a message to the customer on the conversation's public channel. It is stored first (sealed, in the message
 * log, so agents see it at once and a retry with the same clientMessageId finds it), then handed to the provider with
 * retries and an idempotency key; its delivery state follows the provider's receipts. On WhatsApp, outside the 24-hour
 * window nothing is stored or sent. The caller has checked the text (DLP) and the sender's access.
 */
export async function sendPublicMessage(ctx: Ctx, deps: ChannelDeps, input: SendInput): Promise<SentPublicMessage> {
  const identity = await requirePublicIdentity(ctx, input.tenantId, input.conversationId)
  const channel = await findTenantChannel(ctx, input.tenantId, identity.connector)
  if (!channel) throw new Problem('channels/not-configured')
  // Outside WhatsApp's window, only an approved template may go out: the bank's, when it registered one for this.
  const window = messagingWindow(identity.connector, identity.lastInboundAt, {
    humanAgentTag: channel.settings.humanAgentTag === true,
    templates: true,
  })
  const template =
    window.kind === 'template'
      ? templateFor(await loadWhatsAppTemplates(ctx, input.tenantId), input, new URL(deps.env.publicUrl()).host)
      : undefined
  if (window.kind === 'closed' || (window.kind === 'template' && !template)) {
    const reason = template === undefined && window.kind === 'template' ? NO_TEMPLATE : window.reason
    throw new Problem('channels/outside-service-window', reason)
  }
  requireAllowedLinks(await loadLinkPolicy(ctx, input.tenantId), deps.env.publicUrl(), input.text, input.link?.url)

  const place = { conversationId: input.conversationId, sender: input.sender, clientMessageId: input.clientMessageId }
  const envelope: Envelope = {
    v: 1,
    channel: identity.connector,
    direction: 'outbound',
    text: input.text,
    ...(input.link ? { linkLabel: input.link.label } : {}),
    at: new Date().toISOString(),
  }
  const existing = await findDeliveryRow(ctx, input.conversationId, input.clientMessageId)
  // A retry of a message the provider already took returns it: the first text sent under an id wins.
  if (existing?.message_id && existing.provider_message_id !== null) return sentResult(existing)
  let message: { id: string; seq: number }
  if (existing?.message_id) {
    message = { id: existing.message_id, seq: Number(existing.seq) }
  } else {
    message = (
      await deps.messageLog.append({
        tenantId: input.tenantId,
        conversationId: input.conversationId,
        sender: input.sender,
        clientMessageId: input.clientMessageId,
        contentType: PUBLIC_MESSAGE_TYPE,
        ciphertext: await sealEnvelope(ctx, input.tenantId, place, envelope),
        expiresAt: null,
      })
    ).message
    const now = new Date()
    await ctx.db
      .insertInto('channel_messages')
      .values({
        tenant_id: input.tenantId,
        id: newId('chm'),
        identity_id: identity.id,
        conversation_id: input.conversationId,
        connector: identity.connector,
        direction: 'outbound',
        client_message_id: input.clientMessageId,
        message_id: message.id,
        seq: message.seq,
        provider_message_id: null,
        status: 'pending',
        error_code: null,
        created_at: now,
        updated_at: now,
      })
      .onConflict((oc) => oc.columns(['conversation_id', 'direction', 'client_message_id']).doNothing())
      .execute()
    await indexPublicText(
      ctx,
      { tenantId: input.tenantId, conversationId: input.conversationId, seq: message.seq },
      input.text,
    )
  }

  const connector = connectorFor(channel, deps.env)
  try {
    const sent = await connector.send({
      to: await addressOf(ctx, identity),
      text: input.text,
      link: input.link,
      idempotencyKey: idempotencyKey(input.tenantId, input.conversationId, input.clientMessageId),
      customerLastMessageAt: identity.lastInboundAt ?? undefined,
      template,
    })
    const updated = await ctx.db
      .updateTable('channel_messages')
      .set({ provider_message_id: sent.providerMessageId, status: 'queued', updated_at: new Date() })
      .where('tenant_id', '=', input.tenantId)
      .where('conversation_id', '=', input.conversationId)
      .where('direction', '=', 'outbound')
      .where('client_message_id', '=', input.clientMessageId)
      .where('provider_message_id', 'is', null)
      .returningAll()
      .executeTakeFirst()
    return sentResult(updated ?? (await findDeliveryRow(ctx, input.conversationId, input.clientMessageId)))
  } catch (error) {
    const code = error instanceof ProviderRejectedError ? (error.providerCode ?? error.code) : undefined
    await ctx.db
      .updateTable('channel_messages')
      .set({ status: 'failed', error_code: code ?? (error instanceof ConnectorError ? error.code : 'internal') })
      .where('tenant_id', '=', input.tenantId)
      .where('conversation_id', '=', input.conversationId)
      .where('direction', '=', 'outbound')
      .where('client_message_id', '=', input.clientMessageId)
      .execute()
    // Connector errors carry no secret and no message text; anything else is logged without its details.
    ctx.log.warn({ connector: identity.connector, code: (error as { code?: string }).code }, 'public send failed')
    if (error instanceof OutsideServiceWindowError || error instanceof MessengerWindowClosedError) {
      throw new Problem('channels/outside-service-window', error.message)
    }
    if (error instanceof ProviderRejectedError) throw new Problem('channels/provider-rejected', error.answer)
    if (error instanceof ProviderUnavailableError) throw new Problem('channels/provider-unavailable')
    throw new Problem('channels/provider-unavailable')
  }
}

/**
 * Refuses an agent's text holding card or account data, before it is stored or sent anywhere public; the refusal is
 * audited with the kinds found, never the values.
 */
export async function refuseSensitiveData(
  ctx: Pick<ServerContext, 'db'>,
  principal: Principal,
  target: { kind: 'conversation' | 'customer'; id: string },
  connector: string,
  text: string,
): Promise<void> {
  const { findings } = scanText(text, await loadDlpPatterns(ctx, principal.tenantId))
  if (findings.length === 0) return
  await recordAudit(ctx.db, {
    tenantId: principal.tenantId,
    actor: actorOf(principal),
    action: 'channels.dlp.refused',
    target,
    outcome: 'denied',
    details: { channel: connector, kinds: [...new Set(findings.map((f) => f.kind))] },
  })
  throw new Problem('channels/sensitive-data', 'invite the customer to the secure channel instead')
}

const NO_TEMPLATE =
  'more than 24 hours since the customer wrote on WhatsApp, and no template is registered for this (PUT /v1/channels/whatsapp/templates)'

async function findDeliveryRow(ctx: Pick<ServerContext, 'db'>, conversationId: string, clientMessageId: string) {
  return ctx.db
    .selectFrom('channel_messages')
    .selectAll()
    .where('conversation_id', '=', conversationId)
    .where('direction', '=', 'outbound')
    .where('client_message_id', '=', clientMessageId)
    .executeTakeFirst()
}

function sentResult(
  row:
    | {
        message_id: string | null
        seq: string | number | null
        status: string
        provider_message_id: string | null
        error_code: string | null
      }
    | undefined,
): SentPublicMessage {
  if (!row?.message_id) throw new Problem('server/internal')
  return {
    messageId: row.message_id,
    seq: Number(row.seq),
    delivery: {
      status: row.status as DeliveryState,
      providerMessageId: row.provider_message_id,
      errorCode: row.error_code,
    },
  }
}

/** A provider's receipt moves the message's delivery state forward (never back; failed only before delivery). */
export async function applyReceipt(ctx: Pick<ServerContext, 'db'>, tenantId: string, receipt: DeliveryReceipt) {
  const rank = RANK[receipt.status] ?? 0
  const lowerRanks = Object.entries(RANK)
    .filter(([, r]) => (receipt.status === 'failed' ? r < DELIVERED_RANK : r < rank))
    .map(([status]) => status)
  if (lowerRanks.length === 0) return
  await ctx.db
    .updateTable('channel_messages')
    .set({ status: receipt.status, error_code: receipt.errorCode ?? null, updated_at: new Date() })
    .where('tenant_id', '=', tenantId)
    .where('provider_message_id', '=', receipt.providerMessageId)
    .where('direction', '=', 'outbound')
    .where('status', 'in', lowerRanks)
    .execute()
}

/** Messenger's "everything up to then": every outbound message of that customer's conversation sent by then. */
export async function applyWatermark(
  ctx: Pick<ServerContext, 'db'>,
  identity: ChannelIdentity,
  watermark: DeliveryWatermark,
) {
  const lower = watermark.status === 'read' ? ['pending', 'queued', 'sent', 'delivered'] : ['pending', 'queued', 'sent']
  await ctx.db
    .updateTable('channel_messages')
    .set({ status: watermark.status, updated_at: new Date() })
    .where('tenant_id', '=', identity.tenantId)
    .where('identity_id', '=', identity.id)
    .where('direction', '=', 'outbound')
    .where('provider_message_id', 'is not', null)
    .where('created_at', '<=', watermark.upTo)
    .where('status', 'in', lower)
    .execute()
}

/** A public message as the API shows it (the SDK's PublicMessage: the two cannot drift apart). */
export type PublicMessageView = PublicMessage

/**
 * The public-channel messages of a conversation, opened: the public thread itself, or the history a pivot imported
 * into a secure conversation. Other messages (MLS ciphertext) are not shown here.
 */
export async function listPublicMessages(
  ctx: Pick<ServerContext, 'db' | 'keyring'>,
  principal: Principal,
  conversationId: string,
  range: { afterSeq: number; limit: number },
): Promise<PublicMessageView[]> {
  await requireConversationAccess(ctx, principal, conversationId)
  const messages = await fetchMessages(ctx, principal.tenantId, conversationId, range)
  const deliveries = await ctx.db
    .selectFrom('channel_messages')
    .select(['client_message_id', 'status', 'error_code'])
    .where('tenant_id', '=', principal.tenantId)
    .where('conversation_id', '=', conversationId)
    .where('direction', '=', 'outbound')
    .execute()
  const byClientId = new Map(deliveries.map((d) => [d.client_message_id, d]))
  const views: PublicMessageView[] = []
  for (const message of messages) {
    const opened = await openPublicMessage(ctx, principal.tenantId, message)
    if (!opened) continue
    const delivery =
      opened.imported || opened.direction !== 'outbound' ? undefined : byClientId.get(message.clientMessageId)
    views.push({ ...opened, delivery: delivery ? { status: delivery.status, errorCode: delivery.error_code } : null })
  }
  return views
}

/**
 * A public-channel message of the log (or one a pivot imported), opened with the tenant's keys; undefined for any
 * other message (MLS ciphertext, which the server cannot read).
 */
export async function openPublicMessage(
  ctx: Pick<ServerContext, 'keyring'>,
  tenantId: string,
  message: WireMessage,
): Promise<Omit<PublicMessageView, 'delivery'> | undefined> {
  if (message.contentType !== PUBLIC_MESSAGE_TYPE && message.contentType !== IMPORTED_HISTORY_TYPE) return undefined
  const envelope = await openEnvelope(ctx, tenantId, message, Buffer.from(message.ciphertext, 'base64'))
  return {
    id: message.id,
    seq: message.seq,
    sender: message.sender,
    direction: envelope.direction,
    channel: envelope.channel,
    text: envelope.text,
    masked: envelope.masked ?? [],
    maskedLater: envelope.maskedLater === true,
    risk: envelope.risk ?? [],
    mediaCount: envelope.mediaCount ?? 0,
    linkLabel: envelope.linkLabel ?? null,
    at: envelope.at,
    imported: message.contentType === IMPORTED_HISTORY_TYPE,
  }
}
