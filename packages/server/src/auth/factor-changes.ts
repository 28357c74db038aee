import type { AuthenticationResponseJSON } from '@simplewebauthn/server'
import type { CustomerFactor } from '@strongroom/sdk/factors'
import type { SecurityNotice, StepUpPolicy } from '@strongroom/sdk/protocol'
import { type Actor, recordAudit } from '../audit/events.ts'
import { publishCustomerNotice } from '../identity/device-events.ts'
import type { ServerContext } from '../platform/context.ts'
import type { Principal } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { deletePasskeys, listPasskeys, verifyPasskeyAssertion } from './passkeys.ts'
import { coolingOffUntil, type EnrolledFactorKind, loadStepUpPolicy, proofNeededFor } from './step-up-policy.ts'
import { deleteTotpFactors, listTotpFactors, verifyTotp } from './totp.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'config' | 'bus'>

/** What proves a factor change: a code of the active authenticator app, or a passkey assertion (user verified). */
export type FactorProof = { totpCode: string } | { passkey: AuthenticationResponseJSON }

/** A change to a customer's factors, as the audit log and the step-up rule see it. */
export interface FactorChange {
  action: 'add' | 'remove'
  kind: EnrolledFactorKind
  /** The factor removed (a factor may always be removed with itself, even while cooling off). */
  factorId?: string
}

/** Who asks for a change: one of the customer's devices. */
export interface FactorChanger {
  tenantId: string
  customerId: string
  deviceId: string
}

/** Factors are changed by the customer, from one of their devices. */
export function changerOf(principal: Principal): FactorChanger {
  if (principal.kind !== 'device') throw new Problem('auth/forbidden')
  return { tenantId: principal.tenantId, customerId: principal.customerId, deviceId: principal.deviceId }
}

/** A customer's TOTP factors and passkeys, oldest first, each with the end of its cooling-off period. */
export async function listFactors(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  customerId: string,
  policy?: StepUpPolicy,
): Promise<CustomerFactor[]> {
  const rules = policy ?? (await loadStepUpPolicy(ctx, tenantId))
  const cooling = (activatedAt: string | null) =>
    activatedAt ? (coolingOffUntil(rules, new Date(activatedAt))?.toISOString() ?? null) : null
  const totp = (await listTotpFactors(ctx, tenantId, customerId)).map(
    (f): CustomerFactor => ({
      id: f.id,
      kind: 'totp',
      status: f.status,
      createdAt: f.createdAt,
      activatedAt: f.activatedAt,
      coolingOffUntil: cooling(f.activatedAt),
    }),
  )
  const passkeys = (await listPasskeys(ctx, tenantId, { kind: 'customer', id: customerId })).map(
    (p): CustomerFactor => ({
      id: p.id,
      kind: 'passkey',
      status: 'active',
      createdAt: p.createdAt,
      activatedAt: p.createdAt,
      coolingOffUntil: cooling(p.createdAt),
    }),
  )
  return [...totp, ...passkeys].sort((a, b) => a.createdAt.localeCompare(b.createdAt))
}

/**
 * Checks that a change to a customer's factors is proven by a step-up: while they hold an active factor, adding,
 * replacing or removing one needs a factor of at least its assurance (`proofNeededFor`), presented now, not in its
 * cooling-off period (unless it is the very factor removed). Without a factor held, nothing is needed (the first
 * one). Every refusal and every proof is audited. Gives whether a factor was held, so that a TOTP confirmation knows
 * it may replace the active one.
 */
export async function proveFactorChange(
  ctx: Ctx,
  changer: FactorChanger,
  change: FactorChange,
  proof: FactorProof | undefined,
): Promise<{ proven: boolean }> {
  const { tenantId, customerId } = changer
  const actor: Actor = { kind: 'device', id: changer.deviceId }
  const policy = await loadStepUpPolicy(ctx, tenantId)
  const held = (await listFactors(ctx, tenantId, customerId, policy)).filter((f) => f.status === 'active')
  const needed = proofNeededFor(
    change.kind,
    held.map((f) => f.kind),
  )
  const audit = (outcome: 'success' | 'denied', reason?: string, provedWith?: string) =>
    recordAudit(ctx.db, {
      tenantId,
      actor,
      action: `factor.${change.kind}.${change.action}.step-up`,
      target: { kind: 'customer', id: customerId },
      outcome,
      reason,
      details: { needed: needed ?? 'none', ...(provedWith ? { provedWith } : {}) },
    })
  if (!needed) return { proven: false }
  const refuse = async (reason: string) => {
    await audit('denied', reason)
    return new Problem('auth/step-up-required', reason)
  }
  if (!proof)
    throw await refuse(`requires ${needed === 'passkey' ? 'a passkey' : 'the authenticator app or a passkey'}`)
  let proved: { factorId: string; activatedAt: Date }
  if ('totpCode' in proof) {
    if (needed === 'passkey') throw await refuse('requires a passkey')
    proved = await verifyTotp(ctx, tenantId, customerId, proof.totpCode, { actor })
  } else {
    const owner = { kind: 'customer' as const, id: customerId }
    const passkey = await verifyPasskeyAssertion(ctx, tenantId, proof.passkey, {
      challenge: { purpose: 'authenticate', owner },
      owner,
      audit: { action: `factor.${change.kind}.${change.action}.step-up`, actor },
      refusal: 'auth/passkey-invalid',
    })
    proved = { factorId: passkey.passkeyId, activatedAt: passkey.createdAt }
  }
  const until = coolingOffUntil(policy, proved.activatedAt)
  if (until && proved.factorId !== change.factorId) {
    throw await refuse(`the factor presented was added less than ${policy.factorCoolingOffHours} hours ago`)
  }
  await audit('success', undefined, proved.factorId)
  return { proven: true }
}

/**
 * Removes one of a customer's factors, from one of their devices, proven like any change (`proveFactorChange`):
 * deleted and audited in one transaction, then every device of the customer is told.
 */
export async function removeFactor(
  ctx: Ctx,
  changer: FactorChanger,
  factorId: string,
  proof: FactorProof | undefined,
): Promise<void> {
  const { tenantId, customerId } = changer
  const factor = (await listFactors(ctx, tenantId, customerId)).find((f) => f.id === factorId)
  if (!factor) throw new Problem('request/not-found', 'no such factor')
  await proveFactorChange(ctx, changer, { action: 'remove', kind: factor.kind, factorId }, proof)
  const removed = await ctx.db.transaction().execute(async (trx) => {
    const deleted =
      factor.kind === 'totp'
        ? await deleteTotpFactors(trx, tenantId, customerId, factorId)
        : await deletePasskeys(trx, tenantId, { kind: 'customer', id: customerId }, factorId)
    if (deleted.length === 0) return false
    await recordAudit(trx, {
      tenantId,
      actor: { kind: 'device', id: changer.deviceId },
      action: `factor.${factor.kind}.remove`,
      target: { kind: factor.kind === 'totp' ? 'totp-factor' : 'passkey', id: factorId },
      outcome: 'success',
      details: { customerId },
    })
    return true
  })
  // Removed meanwhile by another request, which told the devices.
  if (!removed) throw new Problem('request/not-found', 'no such factor')
  noticeFactorChange(ctx, changer, { kind: 'factor-removed', factor: factor.kind })
}

/**
 * The staff-assisted reset, for a customer who lost every factor: all their TOTP factors and passkeys are deleted in
 * one transaction, audited with the staff member and the reason they gave, and every device of the customer is told.
 * The customer then enrols afresh; the new factor starts its cooling-off period.
 */
export async function resetFactors(
  ctx: Ctx,
  tenantId: string,
  customerId: string,
  input: { reason: string },
  actor: Actor,
): Promise<{ removed: number }> {
  const removed = await ctx.db.transaction().execute(async (trx) => {
    const totp = await deleteTotpFactors(trx, tenantId, customerId)
    const passkeys = await deletePasskeys(trx, tenantId, { kind: 'customer', id: customerId })
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'factor.reset',
      target: { kind: 'customer', id: customerId },
      outcome: 'success',
      reason: input.reason,
      details: { totpFactors: totp.length, passkeys: passkeys.length },
    })
    return totp.length + passkeys.length
  })
  publishCustomerNotice(ctx.bus, {
    tenantId,
    customerId,
    notice: { kind: 'factors-reset', factor: null, by: { kind: 'staff' }, at: new Date().toISOString() },
  })
  return { removed }
}

/** Tells every device of the customer that one of them changed a factor (on every node, over the bus). */
export function noticeFactorChange(
  ctx: Pick<ServerContext, 'bus'>,
  changer: FactorChanger,
  notice: Pick<SecurityNotice, 'kind' | 'factor'>,
): void {
  publishCustomerNotice(ctx.bus, {
    tenantId: changer.tenantId,
    customerId: changer.customerId,
    notice: { ...notice, by: { kind: 'device', deviceId: changer.deviceId }, at: new Date().toISOString() },
  })
}
