import { randomInt, timingSafeEqual } from 'node:crypto'
import { formatAmount } from '@strongroom/sdk/consent'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { SimSwapProvider } from '../auth/sim-swap.ts'
import { requireSmsUsable } from '../auth/sms-gate.ts'
import type { SmsSender } from '../auth/sms-otp.ts'
import { assessFactors, evaluateStepUp, loadStepUpPolicy } from '../auth/step-up-policy.ts'
import type { InboundSmsReply } from '../channels/sms.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'
import type { TenantSigningKeys } from '../platform/keyring/signing-keys.ts'
import { findTenant } from '../tenancy/tenants.ts'
import { issueApproval, notifyRequester } from './approve.ts'
import { type ConsentRequest, decide, getConsent, publishConsentUpdate } from './consents.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'config' | 'log' | 'bus'>

/** A confirmation lives at most this long (and never past its consent). */
const LIFETIME_MS = 15 * 60_000
/** Wrong-code replies from the number before its open confirmations are void: 4 digits are few. */
const MAX_FAILURES = 3
/** Confirmations one consent may send: each new one voids the previous. */
const MAX_SENDS = 3
const PHONE_INDEX = 'sms_confirmations.phone'
const REPLY = /^\s*(YES|NO)\s+(\d{4})\s*[.!]?\s*$/i
const SMS_REPLY_ACTOR: Actor = { kind: 'system', id: 'sms-reply' }

const codeHash = (ctx: Pick<ServerContext, 'keyring'>, tenantId: string, rowId: string, code: string) =>
  ctx.keyring.blindIndex(tenantId, `sms-reply\0${rowId}`, code)

/**
 * Sends the customer "Reply YES 4821 to approve EUR 1,250.00 to ACME Ltd (ref …)" for a pending consent, after the
 * SIM-swap check: the fallback when no enrolled device is at hand. Refused up front when the tenant's step-up policy
 * would not let an SMS reply approve this amount. The 4-digit code is stored only as a keyed hash.
 */
export async function requestSmsConfirmation(
  ctx: Ctx,
  deps: { sendSms: SmsSender; simSwap: SimSwapProvider },
  input: { tenantId: string; consentId: string; actor: Actor },
): Promise<{ expiresAt: string }> {
  const consent = await getConsent(ctx, input.tenantId, input.consentId)
  if (consent.status === 'expired') throw new Problem('consent/expired')
  if (consent.status !== 'pending') throw new Problem('consent/already-decided')
  const decision = await smsReplyDecision(ctx, input.tenantId, consent)
  if (decision.decision === 'deny') {
    throw new Problem('auth/forbidden', 'the step-up policy does not let an SMS reply approve this consent')
  }
  const sent = await ctx.db
    .selectFrom('sms_confirmations')
    .select(({ fn }) => fn.countAll<string>().as('n'))
    .where('tenant_id', '=', input.tenantId)
    .where('consent_id', '=', consent.id)
    .executeTakeFirstOrThrow()
  if (Number(sent.n) >= MAX_SENDS) throw new Problem('auth/sms-rate-limited')
  const phoneNumber = await requireSmsUsable(ctx, deps.simSwap, {
    tenantId: input.tenantId,
    customerId: consent.customerId,
    actor: input.actor,
    purpose: 'sms-reply',
  })
  const id = newId('smc')
  const code = randomInt(0, 10_000).toString().padStart(4, '0')
  const now = new Date()
  const expiresAt = new Date(Math.min(now.getTime() + LIFETIME_MS, new Date(consent.expiresAt).getTime()))
  await ctx.db.transaction().execute(async (trx) => {
    // Only the newest confirmation of a consent can be answered.
    await trx
      .updateTable('sms_confirmations')
      .set({ used_at: now })
      .where('tenant_id', '=', input.tenantId)
      .where('consent_id', '=', consent.id)
      .where('used_at', 'is', null)
      .execute()
    await trx
      .insertInto('sms_confirmations')
      .values({
        tenant_id: input.tenantId,
        id,
        consent_id: consent.id,
        customer_id: consent.customerId,
        phone_index: await ctx.keyring.blindIndex(input.tenantId, PHONE_INDEX, phoneNumber),
        code_hash: await codeHash(ctx, input.tenantId, id, code),
        created_at: now,
        expires_at: expiresAt,
        used_at: null,
        outcome: null,
      })
      .execute()
  })
  const bank = (await findTenant(ctx, input.tenantId))?.name ?? 'Your bank'
  await deps.sendSms({
    tenantId: input.tenantId,
    to: phoneNumber,
    text:
      `${bank}: Reply YES ${code} to approve ${formatAmount(consent.amount)} to ${consent.payee.name} ` +
      `(ref ${consent.reference}). Reply NO ${code} to decline. If this was not you, reply NO ${code} and call us.`,
    idempotencyKey: id,
  })
  await recordAudit(ctx.db, {
    tenantId: input.tenantId,
    actor: input.actor,
    action: 'consent.sms-confirmation.send',
    target: { kind: 'consent', id: consent.id },
    outcome: 'success',
    details: { expiresAt: expiresAt.toISOString() },
  })
  return { expiresAt: expiresAt.toISOString() }
}

/** The step-up policy's word on approving this consent by SMS reply (the tenant's SMS-reply amount limit). */
async function smsReplyDecision(ctx: Pick<ServerContext, 'db'>, tenantId: string, consent: ConsentRequest) {
  return evaluateStepUp(await loadStepUpPolicy(ctx, tenantId), {
    action: 'consent.approve',
    amount: consent.amount,
    // No device: rules about new devices do not apply; the SIM-swap check stands for the device's risk signals.
    deviceEnrolledAt: new Date(0),
    riskFlags: [],
    via: 'sms-reply',
  })
}

/**
 * An inbound SMS: when it says `YES <code>` or `NO <code>` (any case) and comes from the number an open confirmation
 * was sent to, with that confirmation's code, it decides the consent (the confirmation used up by one conditional
 * update, the consent decided once). Anything else changes nothing: a wrong code counts against the number's open
 * confirmations, which three wrong codes void. The message itself was already stored as an ordinary public message.
 */
export async function handleSmsReply(
  ctx: Ctx,
  deps: { receiptKeys: TenantSigningKeys; simSwap: SimSwapProvider },
  reply: InboundSmsReply,
): Promise<void> {
  const match = REPLY.exec(reply.text)
  if (!match) return
  const answer = (match[1] as string).toUpperCase() === 'YES' ? 'approved' : 'declined'
  const code = match[2] as string
  const { tenantId } = reply
  const now = new Date()
  const open = await ctx.db
    .selectFrom('sms_confirmations')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('phone_index', '=', await ctx.keyring.blindIndex(tenantId, PHONE_INDEX, reply.from))
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .where('failed_attempts', '<', MAX_FAILURES)
    .execute()
  if (open.length === 0) return
  let found: (typeof open)[number] | undefined
  for (const row of open) {
    const actual = await codeHash(ctx, tenantId, row.id, code)
    if (timingSafeEqual(actual, Buffer.from(row.code_hash))) found = row
  }
  if (!found) {
    await ctx.db
      .updateTable('sms_confirmations')
      .set((eb) => ({ failed_attempts: eb('failed_attempts', '+', 1) }))
      .where('tenant_id', '=', tenantId)
      .where(
        'id',
        'in',
        open.map((row) => row.id),
      )
      .where('used_at', 'is', null)
      .execute()
    for (const row of open) {
      await recordAudit(ctx.db, {
        tenantId,
        actor: SMS_REPLY_ACTOR,
        action: 'consent.sms-reply',
        target: { kind: 'consent', id: row.consent_id },
        outcome: 'failure',
        reason: 'wrong code',
      })
    }
    return
  }
  const confirmation = found
  const refuse = async (reason: string) =>
    recordAudit(ctx.db, {
      tenantId,
      actor: SMS_REPLY_ACTOR,
      action: 'consent.sms-reply',
      target: { kind: 'consent', id: confirmation.consent_id },
      outcome: 'denied',
      reason,
    })
  // The number must still be the customer's, and its SIM still unswapped, when the reply comes.
  let onFile: string
  try {
    onFile = await requireSmsUsable(ctx, deps.simSwap, {
      tenantId,
      customerId: confirmation.customer_id,
      actor: SMS_REPLY_ACTOR,
      purpose: 'sms-reply',
    })
  } catch (error) {
    if (error instanceof Problem) return void (await refuse(error.kind))
    throw error
  }
  if (onFile !== reply.from) return void (await refuse('not the number on file'))
  const consent = await getConsent(ctx, tenantId, confirmation.consent_id)
  if (consent.status !== 'pending') return void (await refuse(`consent ${consent.status}`))
  const consumed = await ctx.db
    .updateTable('sms_confirmations')
    .set({ used_at: now, outcome: answer })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', confirmation.id)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .where('failed_attempts', '<', MAX_FAILURES)
    .returning('id')
    .executeTakeFirst()
  if (!consumed) return void (await refuse('already used'))
  const approver = { tenantId, customerId: consent.customerId, deviceId: null, actor: SMS_REPLY_ACTOR }
  try {
    if (answer === 'declined') {
      const decided = await ctx.db.transaction().execute(async (trx) => {
        const decided = await decide(ctx, trx, tenantId, consent.id, {
          status: 'declined',
          deviceId: null,
          factor: 'sms-reply',
          declineReason: 'declined by SMS reply',
        })
        await notifyRequester(trx, tenantId, decided.requestedBy, {
          type: 'consent.declined',
          data: { consentId: consent.id, status: 'declined' },
        })
        await recordAudit(trx, {
          tenantId,
          actor: SMS_REPLY_ACTOR,
          action: 'consent.decline',
          target: { kind: 'consent', id: consent.id },
          outcome: 'success',
          details: { factors: ['sms-reply'] },
        })
        return decided
      })
      publishConsentUpdate(ctx, tenantId, { id: consent.id, ...decided }, { status: 'declined' })
      return
    }
    const stepUp = await smsReplyDecision(ctx, tenantId, consent)
    const factors = assessFactors(stepUp, [{ factor: 'sms-reply' }])
    if (stepUp.decision === 'deny' || factors.missing.length > 0) {
      return void (await refuse(stepUp.decision === 'deny' ? stepUp.reason : `requires ${factors.missing.join(', ')}`))
    }
    await issueApproval(ctx, deps.receiptKeys, approver, consent, {
      stepUp,
      factors,
      proof: { factor: 'sms-reply', smsConfirmationId: confirmation.id },
    })
  } catch (error) {
    if (error instanceof Problem) return void (await refuse(error.kind))
    throw error
  }
}
