import { recordAudit } from '../audit/events.ts'
import {
  type Envelope,
  IMPORTED_HISTORY_TYPE,
  openEnvelope,
  PUBLIC_MESSAGE_TYPE,
  sealEnvelope,
} from '../channels/envelope.ts'
import { securePlaceName } from '../channels/link-policy.ts'
import {
  type ChannelDeps,
  requirePublicIdentity,
  type SentPublicMessage,
  sendPublicMessage,
} from '../channels/public-messages.ts'
import { publishConversationUpdate } from '../conversations/bus-events.ts'
import { addMemberIn, assignedStaffOf, createConversationIn } from '../conversations/conversations.ts'
import { appendInTransaction } from '../conversations/message-log.ts'
import { fetchMessages } from '../conversations/messages.ts'
import type { DevicePrincipal } from '../identity/devices.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId, newSecret, secretHash } from '../platform/ids.ts'
import { canTakeConversations } from '../tenancy/staff.ts'

/**
 * The pivot from a public channel into the secure one. An agent (or DLP, automatically) sends the customer a link
 * whose token is 256 random bits, stored only as its SHA-256, single use, short-lived and bound to the public
 * conversation, its channel identity and the customer it is linked to. An enrolled device of that customer redeems
 * it (or a browser that is not enrolled steps up and enrols: pivot-step-up.ts): the secure conversation is created
 * (or the one an earlier pivot made is reused), the public history is imported into it, sealed and marked as
 * public-channel history, and the public thread is told the conversation moved.
 */
export type PivotLinkStatus = 'sent' | 'opened' | 'completed' | 'expired' | 'revoked'

/** How a link was completed: by an enrolled device, or by a new one that stepped up with a passkey or an SMS code. */
export type PivotCompletion = 'device' | 'passkey' | 'sms-otp'

export interface PivotLinkView {
  id: string
  conversationId: string
  status: PivotLinkStatus
  completedVia: PivotCompletion | null
  createdBy: { kind: string; id: string | null }
  expiresAt: string
  openedAt: string | null
  completedAt: string | null
  secureConversationId: string | null
  createdAt: string
}

type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'bus' | 'config' | 'log'>

/**
 * The invitation names the domain of the bank's links, so that the customer can tell a smisher's from ours, and the
 * place the link opens as the bank's link policy calls it ("on our secure page" or "in our app").
 */
const invitationText = (place: string, host: string) =>
  `To continue this conversation ${place}, where only you and the bank can read it, open the link. It works once, ` +
  `for a few minutes. Our links only ever go to ${host}.`
const closingText = (place: string) => `This conversation continues ${place}. Please do not send personal details here.`
/** The bank's own texts about the move (invitations, the closing note): not carried into the secure history. */
const PIVOT_TEXT_PREFIX = 'pivot-'

/** Who invites the customer of which public conversation, and for how long the link works. */
interface PivotInvitation {
  tenantId: string
  conversationId: string
  createdBy: { kind: 'staff'; id: string } | { kind: 'system'; id: string }
  ttlSeconds?: number | undefined
}

/**
 * The customer's one way into the secure channel from this conversation: the live link (sent, or opened, not yet
 * used, replaced or expired) if there is one, which is not sent again; otherwise a new link, minted and sent on the
 * conversation's channel (a button on WhatsApp and Messenger). So DLP's automatic invitation and the agent's button
 * are one flow and one link; `replace` (the agent's "send a new link") sends a new one, which replaces the live one.
 */
export async function invitePivot(
  ctx: Ctx,
  deps: ChannelDeps,
  input: PivotInvitation & { replace?: boolean | undefined },
): Promise<{ link: PivotLinkView; message?: SentPublicMessage | undefined }> {
  if (!input.replace) {
    const live = (await listPivotLinks(ctx, input.tenantId, input.conversationId)).find(
      (link) => link.status === 'sent' || link.status === 'opened',
    )
    if (live) return { link: live }
  }
  return sendPivotLink(ctx, deps, input)
}

/** Mints a pivot link and sends it; the links sent before it to the customer stop working once it reached them. */
async function sendPivotLink(
  ctx: Ctx,
  deps: ChannelDeps,
  input: PivotInvitation,
): Promise<{ link: PivotLinkView; message: SentPublicMessage }> {
  const identity = await requirePublicIdentity(ctx, input.tenantId, input.conversationId)
  if (!identity.customerId) throw new Problem('channels/customer-unknown')
  const token = newSecret('srp')
  const id = newId('pvl')
  const now = new Date()
  const expiresAt = new Date(now.getTime() + (input.ttlSeconds ?? ctx.config.pivotLinkTtlSeconds) * 1000)
  await ctx.db.transaction().execute(async (trx) => {
    await trx
      .insertInto('pivot_links')
      .values({
        tenant_id: input.tenantId,
        id,
        token_hash: secretHash(token),
        conversation_id: input.conversationId,
        identity_id: identity.id,
        customer_id: identity.customerId as string,
        created_by_kind: input.createdBy.kind,
        created_by_id: input.createdBy.kind === 'staff' ? input.createdBy.id : null,
        expires_at: expiresAt,
        opened_at: null,
        completed_at: null,
        device_id: null,
        secure_conversation_id: null,
        completed_via: null,
        created_at: now,
      })
      .execute()
    await recordAudit(trx, {
      tenantId: input.tenantId,
      actor: input.createdBy.kind === 'staff' ? input.createdBy : { kind: 'system', id: null },
      action: 'channels.pivot.invite',
      target: { kind: 'conversation', id: input.conversationId },
      outcome: 'success',
      details: { linkId: id, channel: identity.connector, expiresAt: expiresAt.toISOString() },
    })
  })
  // The token travels only in the URL fragment, which browsers do not send to servers or put in Referer headers.
  const url = `${deps.env.publicUrl()}/secure/#t=${token}`
  let message: SentPublicMessage
  try {
    message = await sendPublicMessage(ctx, deps, {
      tenantId: input.tenantId,
      conversationId: input.conversationId,
      sender: input.createdBy,
      clientMessageId: `${PIVOT_TEXT_PREFIX}${id}`,
      text: invitationText(await securePlaceName(ctx, input.tenantId), new URL(deps.env.publicUrl()).host),
      link: { url, label: 'Continue securely' },
    })
  } catch (error) {
    // A link that never reached the customer must not stay usable.
    await ctx.db.updateTable('pivot_links').set({ expires_at: new Date() }).where('id', '=', id).execute()
    throw error
  }
  // One live link per customer: the ones sent before this one (on any channel) stop working now that it reached them.
  await ctx.db
    .updateTable('pivot_links')
    .set({ revoked_at: new Date() })
    .where('tenant_id', '=', input.tenantId)
    .where('customer_id', '=', identity.customerId)
    .where('id', '!=', id)
    .where('created_at', '<', now)
    .where('completed_at', 'is', null)
    .where('revoked_at', 'is', null)
    .execute()
  const link = await findLink(ctx, input.tenantId, id)
  announceLink(ctx, input.tenantId, link)
  return { link, message }
}

/** The public conversation's members (its agent) hear on their streams that its link changed state. */
function announceLink(
  ctx: Pick<ServerContext, 'bus'>,
  tenantId: string,
  link: Pick<PivotLinkView, 'id' | 'status'> & { conversationId: string },
) {
  publishConversationUpdate(ctx.bus, {
    tenantId,
    conversationId: link.conversationId,
    update: { kind: 'pivot', linkId: link.id, status: link.status },
  })
}

/** How many expired links one housekeeping pass announces at the most: the rest wait for the next pass. */
const EXPIRY_BATCH = 500

/**
 * Tells the agents of each link that ran out unused that it expired (the console stops showing it as live without
 * being reloaded). Each is marked as told in the same conditional update that picks it, so that of several nodes
 * sweeping at once exactly one tells it, once. Gives how many it told.
 */
export async function announceExpiredLinks(ctx: Pick<ServerContext, 'db' | 'bus'>): Promise<number> {
  const now = new Date()
  const due = ctx.db
    .selectFrom('pivot_links')
    .select('id')
    .where('completed_at', 'is', null)
    .where('revoked_at', 'is', null)
    .where('expiry_announced_at', 'is', null)
    .where('expires_at', '<=', now)
    .limit(EXPIRY_BATCH)
  // The conditions again on the row itself: a node that waited for another's update finds it told, and skips it.
  const expired = await ctx.db
    .updateTable('pivot_links')
    .set({ expiry_announced_at: now })
    .where('id', 'in', due)
    .where('completed_at', 'is', null)
    .where('revoked_at', 'is', null)
    .where('expiry_announced_at', 'is', null)
    .returning(['tenant_id', 'id', 'conversation_id'])
    .execute()
  for (const row of expired) {
    announceLink(ctx, row.tenant_id, { id: row.id, conversationId: row.conversation_id, status: 'expired' })
  }
  return expired.length
}

function statusOf(row: {
  completed_at: unknown
  opened_at: unknown
  revoked_at: unknown
  expires_at: Date | string
}): PivotLinkStatus {
  if (row.completed_at) return 'completed'
  if (row.revoked_at) return 'revoked'
  if (new Date(row.expires_at).getTime() <= Date.now()) return 'expired'
  return row.opened_at ? 'opened' : 'sent'
}

const iso = (value: Date | string | null) => (value === null ? null : new Date(value).toISOString())

function toView(row: {
  id: string
  conversation_id: string
  created_by_kind: string
  created_by_id: string | null
  expires_at: Date | string
  opened_at: Date | string | null
  completed_at: Date | string | null
  completed_via: PivotCompletion | null
  revoked_at: Date | string | null
  secure_conversation_id: string | null
  created_at: Date | string
}): PivotLinkView {
  return {
    id: row.id,
    conversationId: row.conversation_id,
    status: statusOf(row),
    completedVia: row.completed_via,
    createdBy: { kind: row.created_by_kind, id: row.created_by_id },
    expiresAt: new Date(row.expires_at).toISOString(),
    openedAt: iso(row.opened_at),
    completedAt: iso(row.completed_at),
    secureConversationId: row.secure_conversation_id,
    createdAt: new Date(row.created_at).toISOString(),
  }
}

async function findLink(ctx: Pick<ServerContext, 'db'>, tenantId: string, id: string): Promise<PivotLinkView> {
  const row = await ctx.db
    .selectFrom('pivot_links')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .executeTakeFirstOrThrow()
  return toView(row)
}

/** The links sent in a conversation, newest first, with their states (for the agent). */
export async function listPivotLinks(ctx: Pick<ServerContext, 'db'>, tenantId: string, conversationId: string) {
  const rows = await ctx.db
    .selectFrom('pivot_links')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('conversation_id', '=', conversationId)
    .orderBy('created_at', 'desc')
    .execute()
  return rows.map(toView)
}

/** Why a token could not be used, in the order that tells the customer the most without telling a stranger anything. */
export async function refusalFor(
  ctx: Pick<ServerContext, 'db'>,
  tokenHash: Buffer,
  tenantId: string | undefined,
  customerId: string | undefined,
): Promise<Problem> {
  let query = ctx.db
    .selectFrom('pivot_links')
    .select(['completed_at', 'revoked_at', 'expires_at', 'customer_id'])
    .where('token_hash', '=', tokenHash)
  if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId)
  const row = await query.executeTakeFirst()
  if (!row) return new Problem('pivot/invalid-token')
  if (row.completed_at) return new Problem('pivot/token-used')
  if (row.revoked_at) return new Problem('pivot/token-revoked')
  if (new Date(row.expires_at).getTime() <= Date.now()) return new Problem('pivot/token-expired')
  if (customerId !== undefined && row.customer_id !== customerId) return new Problem('pivot/wrong-customer')
  return new Problem('pivot/invalid-token')
}

/**
 * The secure page (webview) opened the link: marks it opened for the agent and says whether it can still be used.
 * It needs no credentials and returns no personal data; redeeming needs the signed-in device.
 */
export async function openPivotLink(
  ctx: Pick<ServerContext, 'db' | 'bus'>,
  token: string,
): Promise<{ expiresAt: string }> {
  const tokenHash = secretHash(token)
  const row = await ctx.db
    .updateTable('pivot_links')
    .set((eb) => ({ opened_at: eb.fn.coalesce('opened_at', eb.val(new Date())) }))
    .where('token_hash', '=', tokenHash)
    .where('completed_at', 'is', null)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', new Date())
    .returning(['expires_at', 'id', 'tenant_id', 'conversation_id'])
    .executeTakeFirst()
  if (!row) throw await refusalFor(ctx, tokenHash, undefined, undefined)
  announceLink(ctx, row.tenant_id, { id: row.id, conversationId: row.conversation_id, status: 'opened' })
  return { expiresAt: new Date(row.expires_at).toISOString() }
}

/**
 * Redeems a pivot link with an enrolled device (DPoP-bound). The token is consumed in the same transaction that
 * creates (or reuses) the secure conversation and imports the history, by one conditional UPDATE: a replay, an
 * expired link, another tenant's token or a device of another customer changes nothing, and of two redemptions at
 * once exactly one succeeds. A device of another customer is refused; that browser steps up instead.
 */
export async function redeemPivot(
  ctx: Ctx,
  deps: ChannelDeps,
  device: DevicePrincipal,
  token: string,
): Promise<{ secureConversationId: string; importedMessages: number }> {
  const tokenHash = secretHash(token)
  const tenantId = device.tenantId
  const now = new Date()
  let outcome: PivotMove
  try {
    outcome = await ctx.db.transaction().execute((trx) => consumeAndMove(ctx, trx, device, tokenHash, 'device', now))
  } catch (error) {
    if (error instanceof Problem && error.kind.startsWith('pivot/')) {
      await recordAudit(ctx.db, {
        tenantId,
        actor: { kind: 'device', id: device.deviceId },
        action: 'channels.pivot.redeem',
        outcome: 'denied',
        reason: error.kind,
      })
    }
    throw error
  }
  await afterMove(ctx, deps, tenantId, outcome)
  return { secureConversationId: outcome.secureConversationId, importedMessages: outcome.imported }
}

export type PivotMove = Awaited<ReturnType<typeof consumeAndMove>>

/**
 * After the move committed: wake the members up, and, the first time this public thread moves, close it with a short
 * note (a customer who uses a later link has been told already: no second text).
 */
export async function afterMove(ctx: Ctx, deps: ChannelDeps, tenantId: string, outcome: PivotMove): Promise<void> {
  outcome.announce(ctx)
  announceLink(ctx, tenantId, { id: outcome.linkId, conversationId: outcome.publicConversationId, status: 'completed' })
  if (!outcome.firstMove) return
  try {
    await sendPublicMessage(ctx, deps, {
      tenantId,
      conversationId: outcome.publicConversationId,
      sender: { kind: 'system', id: 'pivot' },
      clientMessageId: `${PIVOT_TEXT_PREFIX}closing-${outcome.linkId}`,
      text: closingText(await securePlaceName(ctx, tenantId)),
    })
  } catch (error) {
    // The move has happened; a closing note the provider did not take is not worth failing it for.
    ctx.log.warn({ code: (error as { kind?: string }).kind }, 'pivot closing message not sent')
  }
}

/**
 * Consumes the link for this device of its customer (one conditional UPDATE; the refusal says why it could not) and
 * moves the conversation into the secure channel, in the caller's transaction.
 */
export async function consumeAndMove(
  ctx: Ctx,
  trx: ServerContext['db'],
  device: Pick<DevicePrincipal, 'tenantId' | 'deviceId' | 'customerId'>,
  tokenHash: Buffer,
  via: PivotCompletion,
  now: Date,
) {
  const tenantId = device.tenantId
  const link = await trx
    .updateTable('pivot_links')
    .set({ completed_at: now, device_id: device.deviceId, completed_via: via })
    .where('token_hash', '=', tokenHash)
    .where('tenant_id', '=', tenantId)
    .where('completed_at', 'is', null)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now)
    .where('customer_id', '=', device.customerId)
    .returningAll()
    .executeTakeFirst()
  if (!link) throw await refusalFor({ db: trx }, tokenHash, tenantId, device.customerId)

  const identity = await trx
    .selectFrom('channel_identities')
    .select(['id', 'connector', 'secure_conversation_id', 'imported_through_seq', 'customer_id'])
    .where('tenant_id', '=', tenantId)
    .where('id', '=', link.identity_id)
    .forUpdate()
    .executeTakeFirstOrThrow()
  // The conversation was linked to this customer when the link was made; an agent cannot relink it, but check.
  if (identity.customer_id !== device.customerId) throw new Problem('pivot/wrong-customer')
  const announcements: ((ctx: Pick<ServerContext, 'bus'>) => void)[] = []
  // The agent who sent the link, and else the public conversation's: whoever of them can still take conversations. One
  // who has left since (deactivated, or without a role) does not stop the customer getting in: the conversation then
  // waits unassigned for a supervisor, as a new one does.
  const working = async (staffId: string | null | undefined) =>
    staffId && (await canTakeConversations({ db: trx }, tenantId, staffId)).fit ? staffId : undefined
  const agentId = await working(link.created_by_kind === 'staff' ? link.created_by_id : undefined)
  let secureConversationId = identity.secure_conversation_id
  if (secureConversationId === null) {
    // The secure channel is end-to-end encrypted only: no plaintext, and nothing before its MLS group exists.
    const created = await createConversationIn(trx, tenantId, {
      customerId: device.customerId,
      assignedStaffId: agentId ?? (await working(await assignedStaffOf(trx, tenantId, link.conversation_id))),
      encryptionRequired: true,
    })
    secureConversationId = created.conversation.id
    announcements.push(created.announce)
  } else {
    announcements.push(
      (await addMemberIn(trx, tenantId, secureConversationId, { kind: 'device', id: device.deviceId })).announce,
    )
    if (agentId) {
      announcements.push(
        (await addMemberIn(trx, tenantId, secureConversationId, { kind: 'staff', id: agentId })).announce,
      )
    }
  }

  // The public history after what an earlier pivot imported, sealed again for its new place and marked as imported.
  const history = await fetchMessages({ db: trx }, tenantId, link.conversation_id, {
    afterSeq: Number(identity.imported_through_seq),
    limit: 1000,
  })
  let imported = 0
  let lastSeq = Number(identity.imported_through_seq)
  for (const message of history) {
    lastSeq = message.seq
    if (message.contentType !== PUBLIC_MESSAGE_TYPE || message.clientMessageId.startsWith(PIVOT_TEXT_PREFIX)) continue
    const envelope = await openEnvelope(ctx, tenantId, message, Buffer.from(message.ciphertext, 'base64'))
    const place = {
      conversationId: secureConversationId,
      sender: message.sender,
      clientMessageId: `import-${link.conversation_id}-${message.seq}`,
    }
    const copy: Envelope = { ...envelope, origin: { conversationId: link.conversation_id, seq: message.seq } }
    const appended = await appendInTransaction(trx, {
      tenantId,
      conversationId: secureConversationId,
      sender: message.sender,
      clientMessageId: place.clientMessageId,
      contentType: IMPORTED_HISTORY_TYPE,
      ciphertext: await sealEnvelope(ctx, tenantId, place, copy),
      expiresAt: null,
    })
    announcements.push(appended.announce)
    imported++
  }
  await trx
    .updateTable('channel_identities')
    .set({ secure_conversation_id: secureConversationId, imported_through_seq: lastSeq })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', identity.id)
    .execute()
  await trx
    .updateTable('pivot_links')
    .set({ secure_conversation_id: secureConversationId })
    .where('id', '=', link.id)
    .execute()
  await recordAudit(trx, {
    tenantId,
    actor: { kind: 'device', id: device.deviceId },
    action: 'channels.pivot.redeem',
    target: { kind: 'conversation', id: secureConversationId },
    outcome: 'success',
    details: { linkId: link.id, publicConversationId: link.conversation_id, importedMessages: imported, via },
  })
  return {
    linkId: link.id,
    publicConversationId: link.conversation_id,
    firstMove: identity.secure_conversation_id === null,
    secureConversationId,
    imported,
    announce: (ctx: Pick<ServerContext, 'bus'>) => {
      for (const announce of announcements) announce(ctx)
    },
  }
}
