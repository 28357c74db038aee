import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'
import { findTenant } from '../tenancy/tenants.ts'
import type { SimSwapProvider } from './sim-swap.ts'
import { requireSmsUsable } from './sms-gate.ts'

const LIFETIME_MS = 5 * 60_000
const MAX_FAILURES = 5
/** At most this many codes per customer in the window, and never two within the gap. */
const SENDS_PER_WINDOW = 3
const SEND_WINDOW_MS = 15 * 60_000
const MIN_GAP_MS = 30_000

type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'config' | 'log'>

/**
 * Sends one SMS for a tenant outside any conversation (channels provides it: the tenant's Twilio, else SMPP, channel).
 * Injected, so that the factors that send codes know nothing of connectors.
 */
export type SmsSender = (sms: {
  tenantId: string
  to: string
  text: string
  idempotencyKey: string
}) => Promise<unknown>

/**
 * A 6-digit code has a million values: a plain hash would be reversed at once by anyone reading the table. The code is
 * therefore stored as an HMAC under the tenant's index key (held by the keyring, not the database), bound to its row.
 */
function codeHash(ctx: Pick<ServerContext, 'keyring'>, tenantId: string, rowId: string, code: string) {
  return ctx.keyring.blindIndex(tenantId, `sms-otp\0${rowId}`, code)
}

/**
 * Sends a new one-time code by SMS to the customer's number on file, after the SIM-swap check (fail closed). Resends
 * are limited; a new code replaces the previous one. The code is never logged, audited or returned.
 */
export async function sendSmsOtp(
  ctx: Ctx,
  deps: { sendSms: SmsSender; simSwap: SimSwapProvider },
  input: { tenantId: string; customerId: string; actor: Actor; now?: number },
): Promise<{ expiresAt: string }> {
  const now = input.now ?? Date.now()
  const recent = await ctx.db
    .selectFrom('sms_otp_codes')
    .select('created_at')
    .where('tenant_id', '=', input.tenantId)
    .where('customer_id', '=', input.customerId)
    .where('created_at', '>', new Date(now - SEND_WINDOW_MS))
    .orderBy('created_at', 'desc')
    .execute()
  const last = recent[0] ? new Date(recent[0].created_at).getTime() : undefined
  if (recent.length >= SENDS_PER_WINDOW || (last !== undefined && now - last < MIN_GAP_MS)) {
    await recordAudit(ctx.db, {
      tenantId: input.tenantId,
      actor: input.actor,
      action: 'factor.sms-otp.send',
      target: { kind: 'customer', id: input.customerId },
      outcome: 'denied',
      reason: 'rate limited',
    })
    throw new Problem('auth/sms-rate-limited')
  }
  const phoneNumber = await requireSmsUsable(ctx, deps.simSwap, { ...input, purpose: 'sms-otp' })
  const id = newId('smo')
  const code = randomInt(0, 1_000_000).toString().padStart(6, '0')
  const expiresAt = new Date(now + LIFETIME_MS)
  await ctx.db
    .insertInto('sms_otp_codes')
    .values({
      tenant_id: input.tenantId,
      id,
      customer_id: input.customerId,
      code_hash: await codeHash(ctx, input.tenantId, id, code),
      created_at: new Date(now),
      expires_at: expiresAt,
      used_at: null,
    })
    .execute()
  const bank = (await findTenant(ctx, input.tenantId))?.name ?? 'Your bank'
  // Stored before it is sent, so that a failed send still counts towards the resend limit.
  await deps.sendSms({
    tenantId: input.tenantId,
    to: phoneNumber,
    text: `${bank} code: ${code}. It expires in 5 minutes. Never share it: ${bank} will never ask you for it.`,
    idempotencyKey: id,
  })
  await recordAudit(ctx.db, {
    tenantId: input.tenantId,
    actor: input.actor,
    action: 'factor.sms-otp.send',
    target: { kind: 'customer', id: input.customerId },
    outcome: 'success',
    details: { expiresAt: expiresAt.toISOString() },
  })
  return { expiresAt: expiresAt.toISOString() }
}

/**
 * Checks the customer's newest SMS code and uses it up with one conditional update (of two racing checks, one wins).
 * Five wrong codes void it. Every failure looks the same to the caller, whether the customer is unknown or has no
 * code, or the code is wrong, used, expired or locked; the keyed hash is computed in every case.
 */
export async function verifySmsOtp(
  ctx: Pick<ServerContext, 'db' | 'keyring'>,
  input: { tenantId: string; customerId: string; code: string; actor: Actor; now?: number },
): Promise<void> {
  const now = new Date(input.now ?? Date.now())
  const row = await ctx.db
    .selectFrom('sms_otp_codes')
    .selectAll()
    .where('tenant_id', '=', input.tenantId)
    .where('customer_id', '=', input.customerId)
    .orderBy('created_at', 'desc')
    .limit(1)
    .executeTakeFirst()
  const actual = await codeHash(ctx, input.tenantId, row?.id ?? 'none', input.code)
  const expected = row ? Buffer.from(row.code_hash) : randomBytes(actual.length)
  const matches = expected.length === actual.length && timingSafeEqual(expected, actual)
  let outcome: 'ok' | 'no code' | 'used' | 'locked' | 'expired' | 'wrong code'
  if (!row) outcome = 'no code'
  else if (row.used_at !== null) outcome = 'used'
  else if (row.failed_attempts >= MAX_FAILURES) outcome = 'locked'
  else if (new Date(row.expires_at).getTime() <= now.getTime()) outcome = 'expired'
  else if (!matches) {
    await ctx.db
      .updateTable('sms_otp_codes')
      .set((eb) => ({ failed_attempts: eb('failed_attempts', '+', 1) }))
      .where('tenant_id', '=', input.tenantId)
      .where('id', '=', row.id)
      .where('used_at', 'is', null)
      .execute()
    outcome = 'wrong code'
  } else {
    const consumed = await ctx.db
      .updateTable('sms_otp_codes')
      .set({ used_at: now })
      .where('tenant_id', '=', input.tenantId)
      .where('id', '=', row.id)
      .where('used_at', 'is', null)
      .where('failed_attempts', '<', MAX_FAILURES)
      .where('expires_at', '>', now)
      .returning('id')
      .executeTakeFirst()
    outcome = consumed ? 'ok' : 'used'
  }
  await recordAudit(ctx.db, {
    tenantId: input.tenantId,
    actor: input.actor,
    action: 'factor.sms-otp.verify',
    target: { kind: 'customer', id: input.customerId },
    outcome: outcome === 'ok' ? 'success' : 'failure',
    reason: outcome === 'ok' ? undefined : outcome,
  })
  if (outcome !== 'ok') throw new Problem('auth/invalid-code')
}

/** The one-time SMS codes sent to a customer, as a data subject export lists them: when, never the code. */
export async function listSmsOtpCodes(ctx: Pick<ServerContext, 'db'>, tenantId: string, customerId: string) {
  const rows = await ctx.db
    .selectFrom('sms_otp_codes')
    .select(['id', 'failed_attempts', 'created_at', 'expires_at', 'used_at'])
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .orderBy('created_at')
    .execute()
  return rows.map((row) => ({
    id: row.id,
    failedAttempts: row.failed_attempts,
    createdAt: new Date(row.created_at).toISOString(),
    expiresAt: new Date(row.expires_at).toISOString(),
    usedAt: row.used_at ? new Date(row.used_at).toISOString() : null,
  }))
}
