import { recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'
import type { ChannelConfig } from './channel-config.ts'
import type { InboundMessage, WebhookEvents } from './connectors/connector.ts'
import { scanText } from './dlp.ts'
import { loadDlpPatterns } from './dlp-policy.ts'
import { type Envelope, PUBLIC_MESSAGE_TYPE, sealEnvelope } from './envelope.ts'
import { type ChannelIdentity, identityForSender, noteInbound, phoneNumberOf } from './identities.ts'
import { applyReceipt, applyWatermark, type ChannelDeps, sendPublicMessage } from './public-messages.ts'
import { dispatchInboundSmsReply } from './sms.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'bus' | 'config' | 'log'>

const UNIDENTIFIED_NOTICE =
  'For your security we removed card or account details from your message. Please never send them here: an ' +
  'agent will invite you to continue in our secure app.'

/** Everything a verified webhook carried: messages stored, receipts and watermarks applied. */
export async function processWebhookEvents(
  ctx: Ctx,
  deps: ChannelDeps,
  channel: ChannelConfig,
  events: WebhookEvents,
): Promise<void> {
  for (const message of events.messages) {
    // A payload may name other pages or numbers of the same app: only this channel's are ours.
    if (message.to !== channel.address) continue
    await receiveMessage(ctx, deps, channel, message)
  }
  for (const receipt of events.receipts) await applyReceipt(ctx, channel.tenantId, receipt)
  for (const watermark of events.watermarks) {
    const { identity } = await identityForSender(ctx, channel, watermark.recipient)
    await applyWatermark(ctx, identity, watermark)
  }
}

/**
 * One message from a customer: its sender's identity and public conversation found (or made), its text scanned and
 * masked before anything is stored, then sealed into the message log, where agents get it like any other message.
 * The provider's message id makes it idempotent: a provider retrying the webhook adds nothing. When DLP masked
 * something, the event is audited (kinds, not values) and the customer is invited to the secure channel.
 */
export async function receiveMessage(
  ctx: Ctx,
  deps: ChannelDeps,
  channel: ChannelConfig,
  message: InboundMessage,
): Promise<{ duplicate: boolean }> {
  const { identity } = await identityForSender(ctx, channel, message.from)
  const clientMessageId = `${channel.connector}-${message.providerMessageId}`.slice(0, 128)
  const dlp = scanText(message.text, await loadDlpPatterns(ctx, channel.tenantId))
  const kinds = [...new Set(dlp.findings.map((f) => f.kind))]
  const now = new Date()
  const claimed = await ctx.db.transaction().execute(async (trx) => {
    const inserted = await trx
      .insertInto('channel_messages')
      .values({
        tenant_id: channel.tenantId,
        id: newId('chm'),
        identity_id: identity.id,
        conversation_id: identity.conversationId,
        connector: channel.connector,
        direction: 'inbound',
        client_message_id: clientMessageId,
        message_id: null,
        seq: null,
        provider_message_id: message.providerMessageId,
        status: 'received',
        error_code: null,
        created_at: now,
        updated_at: now,
      })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst()
    if ((inserted.numInsertedOrUpdatedRows ?? 0n) === 0n) return false
    if (kinds.length > 0) {
      await recordAudit(trx, {
        tenantId: channel.tenantId,
        actor: { kind: 'system', id: null },
        action: 'channels.dlp.masked',
        target: { kind: 'conversation', id: identity.conversationId },
        outcome: 'success',
        details: { channel: channel.connector, direction: 'inbound', kinds, count: dlp.findings.length },
      })
    }
    return true
  })
  if (!claimed) return { duplicate: true }

  const sender = { kind: 'channel' as const, id: identity.id }
  const envelope: Envelope = {
    v: 1,
    channel: channel.connector,
    direction: 'inbound',
    text: dlp.masked,
    ...(kinds.length > 0 ? { masked: kinds } : {}),
    ...(message.mediaCount > 0 ? { mediaCount: message.mediaCount } : {}),
    at: message.receivedAt.toISOString(),
  }
  const place = { conversationId: identity.conversationId, sender, clientMessageId }
  try {
    const { message: appended } = await deps.messageLog.append({
      tenantId: channel.tenantId,
      conversationId: identity.conversationId,
      sender,
      clientMessageId,
      contentType: PUBLIC_MESSAGE_TYPE,
      ciphertext: await sealEnvelope(ctx, channel.tenantId, place, envelope),
      expiresAt: null,
    })
    await ctx.db
      .updateTable('channel_messages')
      .set({ message_id: appended.id, seq: appended.seq })
      .where('tenant_id', '=', channel.tenantId)
      .where('conversation_id', '=', identity.conversationId)
      .where('direction', '=', 'inbound')
      .where('client_message_id', '=', clientMessageId)
      .execute()
  } catch (error) {
    // Not stored: release the claim so that the provider's retry stores it.
    await ctx.db
      .deleteFrom('channel_messages')
      .where('tenant_id', '=', channel.tenantId)
      .where('conversation_id', '=', identity.conversationId)
      .where('direction', '=', 'inbound')
      .where('client_message_id', '=', clientMessageId)
      .execute()
    throw error
  }
  await noteInbound(ctx.db, identity, message.receivedAt)
  if (kinds.length > 0) await inviteAfterMasking(ctx, deps, identity, message.providerMessageId)
  const from = phoneNumberOf(channel.connector, message.from)
  if ((channel.connector === 'twilio' || channel.connector === 'smpp') && from) {
    // After the claim above, so a provider's retry of the same message never reaches a handler twice.
    await dispatchInboundSmsReply(ctx, deps, {
      tenantId: channel.tenantId,
      from,
      text: message.text,
      receivedAt: message.receivedAt,
    })
  }
  return { duplicate: false }
}

/**
 * The automatic invitation after DLP masked something: a pivot link when the sender is a known customer, else a
 * notice (an unidentified sender cannot redeem a link until an agent links the conversation to a customer).
 * A failure to send is logged, not thrown: the customer's message is stored, and the webhook must not be retried.
 */
async function inviteAfterMasking(ctx: Ctx, deps: ChannelDeps, identity: ChannelIdentity, providerMessageId: string) {
  try {
    if (identity.customerId) {
      await deps.inviteToSecureChannel({
        tenantId: identity.tenantId,
        conversationId: identity.conversationId,
        createdBy: { kind: 'system', id: 'dlp' },
      })
    } else {
      await sendPublicMessage(ctx, deps, {
        tenantId: identity.tenantId,
        conversationId: identity.conversationId,
        sender: { kind: 'system', id: 'dlp' },
        clientMessageId: `dlp-notice-${identity.connector}-${providerMessageId}`.slice(0, 128),
        text: UNIDENTIFIED_NOTICE,
      })
    }
  } catch (error) {
    const kind = error instanceof Problem ? error.kind : 'internal'
    ctx.log.warn({ connector: identity.connector, reason: kind }, 'DLP invitation not sent')
  }
}
