import { recordAudit } from '../audit/events.ts'
import { publishConversationUpdate } from '../conversations/bus-events.ts'
import { appendInTransaction } from '../conversations/message-log.ts'
import { fetchMessages, resealMessageIn } from '../conversations/messages.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'
import { type ChannelConfig, tenantChannelAddresses } from './channel-config.ts'
import type { InboundMessage, WebhookEvents } from './connectors/connector.ts'
import { applyMasks, locateFindings } from './dlp.ts'
import { loadDlpPatterns } from './dlp-policy.ts'
import { findSplitCard } from './dlp-split.ts'
import { type Envelope, openEnvelope, PUBLIC_MESSAGE_TYPE, sealEnvelope } from './envelope.ts'
import { type ChannelIdentity, flagIdentity, identityForSender, noteInbound, phoneNumberOf } from './identities.ts'
import { assessInbound, loadLinkPolicy, securePlaceName } from './link-policy.ts'
import { indexPublicText } from './message-search.ts'
import { applyReceipt, applyWatermark, type ChannelDeps, sendPublicMessage } from './public-messages.ts'
import { dispatchInboundSmsReply } from './sms.ts'
import { fileSuspiciousReport, reportedInSms } from './suspicious-reports.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'bus' | 'config' | 'log'>

const unidentifiedNotice = (place: string) =>
  'For your security we removed card or account details from your message. Please never send them here: an ' +
  `agent will invite you to continue ${place}.`

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

/** How long after a customer's message its continuation can still complete a card number DLP then masks in both. */
export const SPLIT_CARD_WINDOW_MS = 2 * 60_000
/** How many earlier messages a card number may start in. */
const SPLIT_CARD_PARTS = 2

/**
 * Text as I-JSON (RFC 7493) allows it: a lone surrogate, which a signed webhook's JSON can carry (`"\ud800"`) though
 * no real message holds one, becomes U+FFFD, as a UTF-16 decoder makes it. Left in, the archive's canonical JSON
 * (RFC 8785) refuses the record, and every record the archive member read after it waited behind it.
 */
function wellFormed(text: string): string {
  return text.replace(/\p{Surrogate}/gu, '\uFFFD')
}

/**
 * One message from a customer: its sender's identity and public conversation found (or made), its text scanned and
 * masked before anything is stored, then sealed into the message log, where agents get it like any other message.
 * The provider's message id makes it idempotent: a provider retrying the webhook adds nothing. When DLP masked
 * something, the event is audited (kinds, not values) and the customer is invited to the secure channel.
 *
 * A card number typed over consecutive messages within SPLIT_CARD_WINDOW_MS is masked in this message and, after the
 * fact, in the earlier ones as stored (what agents read, what a pivot imports, what the archive keeps): the claim,
 * the earlier messages re-sealed, this message and the audit event commit in one transaction; then the conversation's
 * open streams are told which messages were masked (a `redaction` update), so a console replaces what it shows.
 *
 * An SMS that reports a suspicious message (REPORT …, Fwd: …) is stored like any other, and the report is queued for
 * staff in the same transaction (suspicious-reports.ts); the customer is thanked.
 */
export async function receiveMessage(
  ctx: Ctx,
  deps: ChannelDeps,
  channel: ChannelConfig,
  message: InboundMessage,
): Promise<{ duplicate: boolean }> {
  const { identity } = await identityForSender(ctx, channel, message.from)
  const text = wellFormed(message.text)
  const clientMessageId = `${channel.connector}-${message.providerMessageId}`.slice(0, 128)
  const located = locateFindings(text, await loadDlpPatterns(ctx, channel.tenantId))
  const earlier = await recentInbound(ctx, identity)
  const split = findSplitCard(
    earlier.map((e) => e.envelope.text),
    text,
  )
  const ownParts = split?.parts.filter((part) => part.text === earlier.length) ?? []
  const { masked, findings } = applyMasks(text, [
    ...located.filter((f) => !ownParts.some((part) => f.start < part.end && f.end > part.start)),
    ...ownParts.map((part) => ({ kind: 'card-number' as const, ...part })),
  ])
  const kinds = [...new Set(findings.map((f) => f.kind))]
  const sms = channel.connector === 'twilio' || channel.connector === 'smpp'
  // A customer forwarding a suspicious message is not one: the report carries the analysis, the sender no flag.
  const reported = sms ? reportedInSms(text) : undefined
  const risk =
    reported === undefined
      ? assessInbound(
          text,
          message.from,
          await loadLinkPolicy(ctx, channel.tenantId),
          await tenantChannelAddresses(ctx, channel.tenantId),
        )
      : { flags: [], hosts: [] }
  const now = new Date()
  const sender = { kind: 'channel' as const, id: identity.id }
  const envelope: Envelope = {
    v: 1,
    channel: channel.connector,
    direction: 'inbound',
    text: masked,
    ...(kinds.length > 0 ? { masked: kinds } : {}),
    ...(risk.flags.length > 0 ? { risk: risk.flags } : {}),
    ...(message.mediaCount > 0 ? { mediaCount: message.mediaCount } : {}),
    at: message.receivedAt.toISOString(),
  }
  const place = { conversationId: identity.conversationId, sender, clientMessageId }
  const ciphertext = await sealEnvelope(ctx, channel.tenantId, place, envelope)
  const remasked = await Promise.all(
    (split?.parts ?? [])
      .filter((part) => part.text < earlier.length)
      .map(async (part) => {
        const { message: stored, envelope: before } = earlier[part.text] as (typeof earlier)[number]
        const after: Envelope = {
          ...before,
          text: applyMasks(before.text, [{ kind: 'card-number', ...part }]).masked,
          masked: [...new Set([...(before.masked ?? []), 'card-number' as const])],
          maskedLater: true,
        }
        return { seq: stored.seq, id: stored.id, ciphertext: await sealEnvelope(ctx, channel.tenantId, stored, after) }
      }),
  )

  const appended = await ctx.db.transaction().execute(async (trx) => {
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
    if ((inserted.numInsertedOrUpdatedRows ?? 0n) === 0n) return undefined
    for (const { seq, ciphertext } of remasked) {
      const target = { tenantId: channel.tenantId, conversationId: identity.conversationId, seq }
      await resealMessageIn(trx, { ...target, contentType: PUBLIC_MESSAGE_TYPE }, ciphertext)
    }
    const result = await appendInTransaction(trx, {
      tenantId: channel.tenantId,
      conversationId: identity.conversationId,
      sender,
      clientMessageId,
      contentType: PUBLIC_MESSAGE_TYPE,
      ciphertext,
      expiresAt: null,
    })
    await trx
      .updateTable('channel_messages')
      .set({ message_id: result.message.id, seq: result.message.seq })
      .where('tenant_id', '=', channel.tenantId)
      .where('conversation_id', '=', identity.conversationId)
      .where('direction', '=', 'inbound')
      .where('client_message_id', '=', clientMessageId)
      .execute()
    const indexed = { tenantId: channel.tenantId, conversationId: identity.conversationId, seq: result.message.seq }
    await indexPublicText({ db: trx, keyring: ctx.keyring }, indexed, masked)
    if (kinds.length > 0) {
      await recordAudit(trx, {
        tenantId: channel.tenantId,
        actor: { kind: 'system', id: null },
        action: 'channels.dlp.masked',
        target: { kind: 'conversation', id: identity.conversationId },
        outcome: 'success',
        details: {
          channel: channel.connector,
          direction: 'inbound',
          kinds,
          count: findings.length,
          ...(remasked.length > 0
            ? {
                splitOver: remasked.length + 1,
                remaskedMessages: remasked.map((r) => r.id),
                // The archive supersedes what it kept of these (evidence-feed.ts reads them by their place).
                remaskedSeqs: remasked.map((r) => String(r.seq)),
              }
            : {}),
        },
      })
    }
    if (reported !== undefined) {
      await fileSuspiciousReport(ctx, trx, {
        tenantId: channel.tenantId,
        source: 'sms',
        conversationId: identity.conversationId,
        customerId: identity.customerId,
        text: reported,
        actor: { kind: 'system', id: null },
      })
    }
    if (risk.flags.length > 0) {
      await flagIdentity(trx, identity, risk.flags)
      await recordAudit(trx, {
        tenantId: channel.tenantId,
        actor: { kind: 'system', id: null },
        action: 'channels.smishing.flagged',
        target: { kind: 'conversation', id: identity.conversationId },
        outcome: 'success',
        details: { channel: channel.connector, messageId: result.message.id, flags: risk.flags, hosts: risk.hosts },
      })
    }
    return result
  })
  if (!appended) return { duplicate: true }
  if (remasked.length > 0) {
    // Consoles already showing the earlier parts read them again (before this message reaches them).
    publishConversationUpdate(ctx.bus, {
      tenantId: channel.tenantId,
      conversationId: identity.conversationId,
      update: { kind: 'redaction', seqs: remasked.map((r) => r.seq) },
    })
  }
  appended.announce(ctx)
  await noteInbound(ctx.db, identity, message.receivedAt)
  if (kinds.length > 0) await inviteAfterMasking(ctx, deps, identity, message.providerMessageId)
  if (reported !== undefined) await acknowledgeReport(ctx, deps, identity, message.providerMessageId)
  const from = phoneNumberOf(channel.connector, message.from)
  if (sms && from) {
    // After the claim above, so a provider's retry of the same message never reaches a handler twice.
    await dispatchInboundSmsReply(ctx, deps, {
      tenantId: channel.tenantId,
      from,
      text,
      receivedAt: message.receivedAt,
    })
  }
  return { duplicate: false }
}

/**
 * The customer's last inbound messages of this conversation, oldest first, as stored, while each is within the split
 * window of the next: where a card number this message completes may have started.
 */
async function recentInbound(ctx: Ctx, identity: ChannelIdentity) {
  const since = new Date(Date.now() - SPLIT_CARD_WINDOW_MS)
  const rows = await ctx.db
    .selectFrom('channel_messages')
    .select(['seq'])
    .where('tenant_id', '=', identity.tenantId)
    .where('conversation_id', '=', identity.conversationId)
    .where('direction', '=', 'inbound')
    .where('seq', 'is not', null)
    .where('created_at', '>', since)
    .orderBy('seq', 'desc')
    .limit(SPLIT_CARD_PARTS)
    .execute()
  const recent = []
  for (const { seq } of rows.reverse()) {
    const [stored] = await fetchMessages(ctx, identity.tenantId, identity.conversationId, {
      afterSeq: Number(seq) - 1,
      untilSeq: Number(seq),
      limit: 1,
    })
    if (stored?.contentType !== PUBLIC_MESSAGE_TYPE) continue
    const envelope = await openEnvelope(ctx, identity.tenantId, stored, Buffer.from(stored.ciphertext, 'base64'))
    recent.push({ message: stored, envelope })
  }
  return recent
}

const REPORT_ACKNOWLEDGEMENT =
  'Thank you: the message you reported is with our fraud team. We never ask for your PIN, passwords or codes by text.'

/** Tells the customer their report arrived. A failure to send is logged, not thrown, as for the invitation below. */
async function acknowledgeReport(ctx: Ctx, deps: ChannelDeps, identity: ChannelIdentity, providerMessageId: string) {
  try {
    await sendPublicMessage(ctx, deps, {
      tenantId: identity.tenantId,
      conversationId: identity.conversationId,
      sender: { kind: 'system', id: 'report' },
      clientMessageId: `report-ack-${identity.connector}-${providerMessageId}`.slice(0, 128),
      text: REPORT_ACKNOWLEDGEMENT,
    })
  } catch (error) {
    const kind = error instanceof Problem ? error.kind : 'internal'
    ctx.log.warn({ connector: identity.connector, reason: kind }, 'report acknowledgement not sent')
  }
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
        text: unidentifiedNotice(await securePlaceName(ctx, identity.tenantId)),
      })
    }
  } catch (error) {
    const kind = error instanceof Problem ? error.kind : 'internal'
    ctx.log.warn({ connector: identity.connector, reason: kind }, 'DLP invitation not sent')
  }
}
