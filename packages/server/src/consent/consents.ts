import { randomBytes } from 'node:crypto'
import type { ConsentRequest } from '@strongroom/sdk/consent'
import type { NewConsent } from '@strongroom/sdk/protocol'
import { type Actor, recordAudit } from '../audit/events.ts'
import { publishConversationUpdate } from '../conversations/bus-events.ts'
import { requireCustomerConversation } from '../conversations/conversations.ts'
import { requireCustomer } from '../identity/customers.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'
import type { EncryptedColumn } from '../platform/keyring/reencrypt.ts'
import { findTenant } from '../tenancy/tenants.ts'
import { isoCurrency } from './currencies.ts'

export type { ConsentRequest, NewConsent }

type Ctx = Pick<ServerContext, 'db' | 'keyring'>
type ConsentRow = Awaited<ReturnType<typeof loadRow>>
const DEFAULT_TTL_SECONDS = 300

const PAYEE_INDEX = 'consents.blocked_payee'
/**
 * A payee account as a bank compares it: its letters and digits only, in capitals (an IBAN's letters are
 * case-insensitive), after NFKC (fullwidth forms), so that spaces, dashes, dots or invisible characters do not make a
 * blocked account look like another.
 */
export const payeeIndex = (ctx: Pick<ServerContext, 'keyring'>, tenantId: string, account: string) =>
  ctx.keyring.blindIndex(
    tenantId,
    PAYEE_INDEX,
    account
      .normalize('NFKC')
      .replace(/[^\p{L}\p{N}]/gu, '')
      .toUpperCase(),
  )
/** The index blocks were recorded under before punctuation was dropped too (only spaces): they still block. */
const earlierPayeeIndex = (ctx: Pick<ServerContext, 'keyring'>, tenantId: string, account: string) =>
  ctx.keyring.blindIndex(tenantId, PAYEE_INDEX, account.replace(/\s+/g, '').toUpperCase())

const detailsField = (id: string) => ({ table: 'consents', column: 'details', rowId: id })
const receiptField = (id: string) => ({ table: 'consents', column: 'receipt', rowId: id })

/** The consent details and receipts, sealed by the keyring: for `keys reencrypt` and `keys retire`. */
export const consentEncryptedColumns: EncryptedColumn[] = [
  { table: 'consents', column: 'details', key: ['id'], field: (row) => detailsField(row.id as string) },
  { table: 'consents', column: 'receipt', key: ['id'], field: (row) => receiptField(row.id as string) },
]

/** Asks a customer to confirm a payment. The payee and reference are stored encrypted; the challenge is single-use. */
export async function createConsent(
  ctx: Ctx & Pick<ServerContext, 'bus'>,
  tenantId: string,
  input: NewConsent,
  actor: Actor,
) {
  const id = newId('con')
  const now = new Date()
  if (!isoCurrency(input.amount.currency)) {
    throw new Problem('consent/unknown-currency', `${input.amount.currency} is not an ISO 4217 currency`)
  }
  const expiresAt = new Date(now.getTime() + (input.expiresInSeconds ?? DEFAULT_TTL_SECONDS) * 1000)
  const details = { payee: input.payee, reference: input.reference }
  const blockIndexes = [
    await payeeIndex(ctx, tenantId, input.payee.account),
    await earlierPayeeIndex(ctx, tenantId, input.payee.account),
  ]
  await ctx.db.transaction().execute(async (trx) => {
    await requireCustomer({ db: trx }, tenantId, input.customerId)
    const blocked = await trx
      .selectFrom('consents')
      .select('id')
      .where('tenant_id', '=', tenantId)
      .where('customer_id', '=', input.customerId)
      .where('blocked_payee_index', 'in', blockIndexes)
      .where('payee_block_lifted_at', 'is', null)
      .executeTakeFirst()
    if (blocked) throw new Problem('consent/payee-blocked')
    if (input.conversationId) {
      await requireCustomerConversation({ db: trx }, tenantId, input.conversationId, input.customerId)
    }
    await trx
      .insertInto('consents')
      .values({
        tenant_id: tenantId,
        id,
        customer_id: input.customerId,
        conversation_id: input.conversationId ?? null,
        amount_minor: input.amount.value,
        currency: input.amount.currency,
        details: await ctx.keyring.encrypt(tenantId, detailsField(id), JSON.stringify(details)),
        challenge: randomBytes(32).toString('base64url'),
        status: 'pending',
        requested_by_kind: actor.kind,
        requested_by_id: actor.id,
        created_at: now,
        expires_at: expiresAt,
      })
      .execute()
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'consent.request',
      target: { kind: 'consent', id },
      outcome: 'success',
      details: { customerId: input.customerId, amount: input.amount.value, currency: input.amount.currency },
    })
  })
  publishConsentUpdate(ctx, tenantId, {
    id,
    conversationId: input.conversationId ?? null,
    customerId: input.customerId,
  })
  return getConsent(ctx, tenantId, id)
}

/**
 * Tells the streams of the conversation's members and the customer's devices that a request was asked or decided
 * (after it committed: they read it over the API).
 */
export function publishConsentUpdate(
  ctx: Pick<ServerContext, 'bus'>,
  tenantId: string,
  consent: { id: string; conversationId: string | null; customerId: string },
  decision: { status: ConsentRequest['status']; fraud?: boolean } = { status: 'pending' },
): void {
  publishConversationUpdate(ctx.bus, {
    tenantId,
    conversationId: consent.conversationId,
    customerId: consent.customerId,
    update: {
      kind: 'consent',
      consentId: consent.id,
      status: decision.status,
      ...(decision.fraud ? { fraud: true } : {}),
    },
  })
}

/** How many expired requests one housekeeping pass announces at the most: the rest wait for the next pass. */
const EXPIRY_BATCH = 500

/**
 * Tells the streams of each request that ran out unanswered that it expired (the console and the customer's devices
 * stop showing it as waiting without being reloaded). Each is marked as told in the same conditional update that
 * picks it, so that of several nodes sweeping at once exactly one tells it, once. Gives how many it told.
 */
export async function announceExpiredConsents(ctx: Pick<ServerContext, 'db' | 'bus'>): Promise<number> {
  const now = new Date()
  const due = ctx.db
    .selectFrom('consents')
    .select('id')
    .where('status', '=', 'pending')
    .where('expiry_announced_at', 'is', null)
    .where('expires_at', '<=', now)
    .limit(EXPIRY_BATCH)
  // The conditions again on the row itself: a node that waited for another's update finds it told, and skips it.
  const expired = await ctx.db
    .updateTable('consents')
    .set({ expiry_announced_at: now })
    .where('id', 'in', due)
    .where('status', '=', 'pending')
    .where('expiry_announced_at', 'is', null)
    .returning(['tenant_id', 'id', 'conversation_id', 'customer_id'])
    .execute()
  for (const row of expired) {
    const consent = { id: row.id, conversationId: row.conversation_id, customerId: row.customer_id }
    publishConsentUpdate(ctx, row.tenant_id, consent, { status: 'expired' })
  }
  return expired.length
}

async function loadRow(ctx: Pick<ServerContext, 'db'>, tenantId: string, id: string) {
  return ctx.db
    .selectFrom('consents')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .executeTakeFirst()
}

/** The bank's name as its customers know it (the tenant's), shown on the payment card. */
async function bankNameOf(ctx: Pick<ServerContext, 'db'>, tenantId: string): Promise<string> {
  return (await findTenant(ctx, tenantId))?.name ?? ''
}

/** A consent's sealed details (payee and reference), opened. */
export async function openConsentDetails(
  ctx: Pick<ServerContext, 'keyring'>,
  row: { tenant_id: string; id: string; details: Uint8Array },
): Promise<{ payee: ConsentRequest['payee']; reference: string }> {
  return JSON.parse(await ctx.keyring.decryptText(row.tenant_id, detailsField(row.id), row.details))
}

async function toView(ctx: Ctx, row: NonNullable<ConsentRow>, bankName: string): Promise<ConsentRequest> {
  const details = await openConsentDetails(ctx, row)
  const expiresAt = new Date(row.expires_at)
  const status = row.status === 'pending' && expiresAt.getTime() <= Date.now() ? 'expired' : row.status
  const view: ConsentRequest = {
    id: row.id,
    status,
    bankName,
    customerId: row.customer_id,
    amount: { value: Number(row.amount_minor), currency: row.currency },
    payee: details.payee,
    reference: details.reference,
    challenge: row.challenge,
    createdAt: new Date(row.created_at).toISOString(),
    expiresAt: expiresAt.toISOString(),
  }
  if (row.decided_at) view.decidedAt = new Date(row.decided_at).toISOString()
  if (row.fraud_reported_at) {
    view.fraudReported = true
    view.payeeBlocked = row.blocked_payee_index !== null && row.payee_block_lifted_at === null
  }
  if (row.receipt) view.receipt = await ctx.keyring.decryptText(row.tenant_id, receiptField(row.id), row.receipt)
  return view
}

/** A consent request as its customer's devices and the staff see it; `customerId` limits it to that customer's. */
export async function getConsent(ctx: Ctx, tenantId: string, id: string, customerId?: string): Promise<ConsentRequest> {
  const row = await loadRow(ctx, tenantId, id)
  if (!row || (customerId !== undefined && row.customer_id !== customerId)) {
    throw new Problem('request/not-found', 'no such consent request')
  }
  return toView(ctx, row, await bankNameOf(ctx, tenantId))
}

/** A conversation's consent requests, newest first, as staff see them. */
export async function listConversationConsents(
  ctx: Ctx,
  tenantId: string,
  conversationId: string,
  limit: number,
): Promise<ConsentRequest[]> {
  const rows = await ctx.db
    .selectFrom('consents')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('conversation_id', '=', conversationId)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit)
    .execute()
  const bankName = await bankNameOf(ctx, tenantId)
  return Promise.all(rows.map((row) => toView(ctx, row, bankName)))
}

/**
 * A customer's pending consent requests (not yet decided, not expired), oldest first: what their device shows as cards
 * to approve or decline. With `conversationId`, only those asked in that conversation.
 */
export async function listPendingConsents(
  ctx: Ctx,
  tenantId: string,
  customerId: string,
  conversationId?: string,
): Promise<ConsentRequest[]> {
  let query = ctx.db
    .selectFrom('consents')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .where('status', '=', 'pending')
    .where('expires_at', '>', new Date())
  if (conversationId !== undefined) query = query.where('conversation_id', '=', conversationId)
  const rows = await query.orderBy('created_at').limit(50).execute()
  const bankName = await bankNameOf(ctx, tenantId)
  return Promise.all(rows.map((row) => toView(ctx, row, bankName)))
}

/**
 * Moves a pending, unexpired request to its decision, once (and says who asked for it): a conditional update, so of two racing decisions exactly
 * one wins. Throws the problem that says why when it cannot.
 */
export async function decide(
  ctx: Ctx,
  db: ServerContext['db'],
  tenantId: string,
  id: string,
  decision: {
    status: 'approved' | 'declined'
    deviceId: string | null
    factor?: string
    receipt?: string
    declineReason?: string | undefined
    /** "This wasn't me": reported as fraud, with the payee's blind index when the customer asked for it blocked. */
    fraud?: { blockedPayeeIndex: Uint8Array | null }
  },
): Promise<{ requestedBy: { kind: string; id: string | null }; conversationId: string | null; customerId: string }> {
  const decidedAt = new Date()
  const updated = await db
    .updateTable('consents')
    .set({
      status: decision.status,
      decided_at: decidedAt,
      device_id: decision.deviceId,
      factor: decision.factor ?? null,
      decline_reason: decision.declineReason ?? null,
      receipt: decision.receipt ? await ctx.keyring.encrypt(tenantId, receiptField(id), decision.receipt) : null,
      fraud_reported_at: decision.fraud ? decidedAt : null,
      blocked_payee_index: decision.fraud?.blockedPayeeIndex ?? null,
    })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .where('expires_at', '>', decidedAt)
    .returning(['requested_by_kind', 'requested_by_id', 'conversation_id', 'customer_id'])
    .executeTakeFirst()
  if (updated) {
    return {
      requestedBy: { kind: updated.requested_by_kind, id: updated.requested_by_id },
      conversationId: updated.conversation_id,
      customerId: updated.customer_id,
    }
  }
  const row = await loadRow({ db }, tenantId, id)
  if (row?.status === 'pending') throw new Problem('consent/expired')
  throw new Problem('consent/already-decided')
}

/** Every consent request of a customer, oldest first, with its receipt: for a data subject export. */
export async function listCustomerConsents(ctx: Ctx, tenantId: string, customerId: string): Promise<ConsentRequest[]> {
  const rows = await ctx.db
    .selectFrom('consents')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .orderBy('created_at')
    .execute()
  const bankName = await bankNameOf(ctx, tenantId)
  return Promise.all(rows.map((row) => toView(ctx, row, bankName)))
}
