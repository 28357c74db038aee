import { Secret, TOTP } from 'otpauth'
import QRCode from 'qrcode'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'
import type { EncryptedColumn } from '../platform/keyring/reencrypt.ts'

const PERIOD_SECONDS = 30
const DIGITS = 6
/** ±1 step: a code from the previous or next 30 s is accepted, for clocks that drift. */
const WINDOW = 1
const MAX_FAILURES = 5
const LOCK_MINUTES = 15

type Ctx = Pick<ServerContext, 'db' | 'keyring'>
const secretField = (id: string) => ({ table: 'totp_factors', column: 'secret', rowId: id })

/** The TOTP secrets, sealed by the keyring: for `keys reencrypt` and `keys retire`. */
export const totpEncryptedColumns: EncryptedColumn[] = [
  { table: 'totp_factors', column: 'secret', key: ['id'], field: (row) => secretField(row.id as string) },
]

function totpFor(secret: Secret, label: string, issuer: string): TOTP {
  return new TOTP({ issuer, label, algorithm: 'SHA1', digits: DIGITS, period: PERIOD_SECONDS, secret })
}

/**
 * Starts TOTP enrolment for a customer: a new 160-bit secret, stored encrypted, pending until the customer proves
 * their authenticator app has it by entering a code. Returns the otpauth:// URI and the same as a QR code (SVG).
 */
export async function enrolTotp(ctx: Ctx, tenantId: string, customerId: string, issuer: string, actor: Actor) {
  const id = newId('otp')
  const secret = new Secret({ size: 20 })
  const uri = totpFor(secret, customerId, issuer).toString()
  await ctx.db.transaction().execute(async (trx) => {
    await trx
      .deleteFrom('totp_factors')
      .where('tenant_id', '=', tenantId)
      .where('customer_id', '=', customerId)
      .where('status', '=', 'pending')
      .execute()
    await trx
      .insertInto('totp_factors')
      .values({
        tenant_id: tenantId,
        id,
        customer_id: customerId,
        secret: await ctx.keyring.encrypt(tenantId, secretField(id), secret.base32),
        status: 'pending',
        last_used_step: -1,
        created_at: new Date(),
      })
      .execute()
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'factor.totp.enrol',
      target: { kind: 'customer', id: customerId },
      outcome: 'success',
    })
  })
  return { factorId: id, otpauthUri: uri, qrCodeSvg: await QRCode.toString(uri, { type: 'svg', margin: 1 }) }
}

/**
 * Checks a TOTP code of the customer's active factor (or, with `confirm`, of the pending one, which it then activates).
 * Confirming never replaces an active factor unless the caller proved a step-up for it (`replacing`, see
 * `factor-changes.ts`): otherwise any enrolled device could swap the authenticator out from under the step-up. A code
 * works once: the time step it belongs to must be later than the last one used. Five wrong codes lock the factor for
 * fifteen minutes. Every failure looks the same to the caller, whether the customer has no factor, the code is wrong,
 * used or late, or the factor is locked. Gives the factor that answered and when it became active.
 */
export async function verifyTotp(
  ctx: Ctx,
  tenantId: string,
  customerId: string,
  code: string,
  options: { confirm?: boolean; replacing?: boolean; actor: Actor; now?: number },
): Promise<{ factorId: string; activatedAt: Date }> {
  const now = options.now ?? Date.now()
  const outcome = await ctx.db
    .transaction()
    .execute(async (trx) => {
      const factor = await trx
        .selectFrom('totp_factors')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('customer_id', '=', customerId)
        .where('status', '=', options.confirm ? 'pending' : 'active')
        .forUpdate()
        .executeTakeFirst()
      const secret = factor
        ? Secret.fromBase32(await ctx.keyring.decryptText(tenantId, secretField(factor.id), factor.secret))
        : new Secret({ size: 20 })
      // Computed even without a factor, so that its absence does not answer faster.
      const delta = totpFor(secret, customerId, 'strongroom').validate({ token: code, window: WINDOW, timestamp: now })
      if (!factor) return 'no factor'
      if (factor.locked_until && new Date(factor.locked_until).getTime() > now) return 'locked'
      const step = Math.floor(now / 1000 / PERIOD_SECONDS) + (delta ?? 0)
      if (delta === null || step <= Number(factor.last_used_step)) {
        const failures = factor.failed_attempts + 1
        await trx
          .updateTable('totp_factors')
          .set({
            failed_attempts: failures >= MAX_FAILURES ? 0 : failures,
            locked_until: failures >= MAX_FAILURES ? new Date(now + LOCK_MINUTES * 60_000) : factor.locked_until,
          })
          .where('id', '=', factor.id)
          .execute()
        return delta === null ? 'wrong code' : 'code already used'
      }
      let activatedAt = factor.activated_at ? new Date(factor.activated_at) : new Date(now)
      if (options.confirm) {
        const replaced = await trx
          .deleteFrom('totp_factors')
          .where('tenant_id', '=', tenantId)
          .where('customer_id', '=', customerId)
          .where('status', '=', 'active')
          .executeTakeFirst()
        // Rolled back with the transaction: the active factor stays, the pending one stays pending.
        if (replaced.numDeletedRows > 0n && !options.replacing) throw new StepUpMissing()
        activatedAt = new Date(now)
      }
      await trx
        .updateTable('totp_factors')
        .set({
          status: 'active',
          last_used_step: step,
          failed_attempts: 0,
          locked_until: null,
          activated_at: activatedAt,
        })
        .where('id', '=', factor.id)
        .execute()
      return { factorId: factor.id, activatedAt }
    })
    .catch((error) => {
      if (error instanceof StepUpMissing) return 'step-up missing' as const
      throw error
    })
  const ok = typeof outcome === 'object'
  await recordAudit(ctx.db, {
    tenantId,
    actor: options.actor,
    action: options.confirm ? 'factor.totp.confirm' : 'factor.totp.verify',
    target: { kind: 'customer', id: customerId },
    outcome: ok ? 'success' : outcome === 'step-up missing' ? 'denied' : 'failure',
    reason: ok ? undefined : outcome,
  })
  if (outcome === 'step-up missing') throw new Problem('auth/step-up-required', 'requires the active factor')
  if (!ok) throw new Problem('auth/invalid-code')
  return outcome
}

class StepUpMissing extends Error {}

/**
 * Deletes a customer's TOTP factors (one, by id, or all of them, pending included) in the caller's transaction;
 * gives what it deleted.
 */
export async function deleteTotpFactors(
  db: ServerContext['db'],
  tenantId: string,
  customerId: string,
  factorId?: string,
): Promise<string[]> {
  let query = db.deleteFrom('totp_factors').where('tenant_id', '=', tenantId).where('customer_id', '=', customerId)
  if (factorId) query = query.where('id', '=', factorId)
  return (await query.returning('id').execute()).map((row) => row.id)
}

/** A customer's TOTP factors as a data subject export lists them: state and dates, never the secret. */
export async function listTotpFactors(ctx: Pick<ServerContext, 'db'>, tenantId: string, customerId: string) {
  const rows = await ctx.db
    .selectFrom('totp_factors')
    .select(['id', 'status', 'failed_attempts', 'locked_until', 'created_at', 'activated_at'])
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .orderBy('created_at')
    .execute()
  return rows.map((row) => ({
    id: row.id,
    status: row.status,
    failedAttempts: row.failed_attempts,
    lockedUntil: row.locked_until ? new Date(row.locked_until).toISOString() : null,
    createdAt: new Date(row.created_at).toISOString(),
    activatedAt: row.activated_at ? new Date(row.activated_at).toISOString() : null,
  }))
}
