import type { StepUpFactor, StepUpPolicy } from '@strongroom/sdk/protocol'
import { WEB_DEVICE_FLAG } from '../integrity/web-devices.ts'
import type { ServerContext } from '../platform/context.ts'
import { loadTenantPolicy, saveTenantPolicy } from '../tenancy/policies.ts'

export interface StepUpContext {
  action: 'consent.approve'
  amount: { value: number; currency: string }
  deviceEnrolledAt: Date
  riskFlags: readonly string[]
  /** Set when the approval is an SMS reply rather than a device: then the tenant's SMS-reply limit applies. */
  via?: 'sms-reply'
  now?: Date
}

export interface StepUpDecision {
  decision: 'allow' | 'deny'
  /** Factors needed on top of the device key. */
  required: StepUpFactor[]
  /** Which rules applied, for the audit log and the receipt. */
  rules: string[]
  reason: string
}

/**
 * The one place that decides how strongly an action must be authenticated: every rule whose conditions all hold
 * applies; a deny wins; otherwise the factors the applying rules require add up. With no rule applying, the enrolled
 * device key's signature is enough.
 */
export function evaluateStepUp(policy: StepUpPolicy, context: StepUpContext): StepUpDecision {
  const now = context.now ?? new Date()
  const applying = policy.rules.filter((rule) => {
    if (rule.action !== context.action) return false
    if (rule.minAmount) {
      if (rule.minAmount.currency !== context.amount.currency || context.amount.value < rule.minAmount.value)
        return false
    }
    if (rule.newDeviceHours !== undefined) {
      if (now.getTime() - context.deviceEnrolledAt.getTime() >= rule.newDeviceHours * 3_600_000) return false
    }
    if (rule.riskFlags && !rule.riskFlags.some((flag) => context.riskFlags.includes(flag))) return false
    return true
  })
  const names = applying.map((rule) => rule.name)
  if (context.via === 'sms-reply') {
    const limit = policy.smsReplyMaxAmount?.find((m) => m.currency === context.amount.currency)
    if (!limit || context.amount.value > limit.value) {
      return { decision: 'deny', required: [], rules: names, reason: 'above the SMS reply limit' }
    }
  }
  // A browser cannot attest: its strongest proof is a passkey that verified the user, and the tenant caps the amount.
  const fromBrowser = context.riskFlags.includes(WEB_DEVICE_FLAG)
  if (fromBrowser) {
    const limit = policy.webDeviceMaxAmount?.find((m) => m.currency === context.amount.currency)
    if (!limit || context.amount.value > limit.value) {
      return { decision: 'deny', required: [], rules: names, reason: 'above the browser approval limit' }
    }
  }
  if (applying.some((rule) => 'deny' in rule.outcome)) {
    return { decision: 'deny', required: [], rules: names, reason: 'denied by policy' }
  }
  const required = [
    ...new Set([
      ...applying.flatMap((rule) => ('require' in rule.outcome ? rule.outcome.require : [])),
      ...(fromBrowser ? (['passkey'] as const) : []),
    ]),
  ]
  return {
    decision: 'allow',
    required,
    rules: names,
    reason: required.length > 0 ? `requires ${required.join(', ')}` : 'device key is enough',
  }
}

/** A factor as an approval presents it (before it is checked): a passkey says whether the user was verified. */
export type PresentedFactor =
  | { factor: 'device-key' }
  | { factor: 'totp' }
  | { factor: 'sms-otp' }
  | { factor: 'passkey'; userVerified: boolean }
  | { factor: 'sms-reply' }

export interface FactorAssessment {
  /** What the decision still needs that was not presented; empty when the approval may go on. */
  missing: StepUpFactor[]
  /** The presented factors the decision relies on, in the receipt's words; only these need checking. */
  used: ('device-key' | 'totp' | 'passkey' | 'sms-otp' | 'sms-reply')[]
  assurance: string
}

/**
 * The one place that says which presented factors satisfy a decision. The device key or any passkey proves
 * possession. A passkey with user verification is two factors in one (possession of the authenticator, and the PIN
 * or biometric that unlocked it), so it satisfies `totp` as well as `passkey`; a passkey without user verification
 * is possession only. A code offered when the decision does not need one is not relied on.
 */
export function assessFactors(decision: StepUpDecision, presented: readonly PresentedFactor[]): FactorAssessment {
  // A reply to an SMS is possession of the phone number only: no device, no second factor; it satisfies no rule
  // that requires a factor (the SMS-reply amount limit was applied when the decision was made).
  if (presented.some((p) => p.factor === 'sms-reply')) {
    return { missing: [...decision.required], used: ['sms-reply'], assurance: 'sms-possession' }
  }
  const passkey = presented.find((p) => p.factor === 'passkey')
  const strongPasskey = passkey?.userVerified === true
  const hasTotp = presented.some((p) => p.factor === 'totp')
  const hasSmsOtp = presented.some((p) => p.factor === 'sms-otp')
  const used: FactorAssessment['used'] = [passkey ? 'passkey' : 'device-key']
  const missing: StepUpFactor[] = []
  for (const required of decision.required) {
    if (required === 'passkey' && !strongPasskey) missing.push('passkey')
    if (required === 'totp' && !strongPasskey) {
      if (hasTotp) used.push('totp')
      else missing.push('totp')
    }
  }
  // sms-otp is the weakest second factor: a stronger one already relied on (or presented) satisfies it.
  if (decision.required.includes('sms-otp') && !strongPasskey && !used.includes('totp')) {
    if (hasTotp) used.push('totp')
    else if (hasSmsOtp) used.push('sms-otp')
    else missing.push('sms-otp')
  }
  const assurance = strongPasskey
    ? 'possession+user-verification'
    : used.includes('totp')
      ? 'possession+knowledge'
      : used.includes('sms-otp')
        ? 'possession+sms-otp'
        : 'possession'
  return { missing, used: [...new Set(used)], assurance }
}

/** The factors a customer enrols (beyond the device key and the number on file). */
export type EnrolledFactorKind = 'totp' | 'passkey'

/**
 * How strong an enrolled factor is, in the terms of `assessFactors`: a passkey (always registered and used with user
 * verification) satisfies everything TOTP does and more, so it ranks above.
 */
export const factorAssurance: Record<EnrolledFactorKind, number> = { totp: 1, passkey: 2 }

/**
 * Which factor a change to a customer's factors must be proven with, given the factors they hold: none while they
 * hold none (the first one); otherwise one of at least the assurance of the factor added, replaced or removed, or,
 * when they hold nothing that strong, their strongest (a customer with TOTP proves it to add a passkey, not less).
 */
export function proofNeededFor(
  change: EnrolledFactorKind,
  held: readonly EnrolledFactorKind[],
): EnrolledFactorKind | undefined {
  if (held.length === 0) return undefined
  const strongest = Math.max(...held.map((kind) => factorAssurance[kind]))
  return Math.min(factorAssurance[change], strongest) >= factorAssurance.passkey ? 'passkey' : 'totp'
}

/** When a factor activated at `activatedAt` leaves the tenant's cooling-off period, if it is still in it. */
export function coolingOffUntil(
  policy: Pick<StepUpPolicy, 'factorCoolingOffHours'>,
  activatedAt: Date,
  now = new Date(),
): Date | undefined {
  if (!policy.factorCoolingOffHours) return undefined
  const until = new Date(activatedAt.getTime() + policy.factorCoolingOffHours * 3_600_000)
  return until > now ? until : undefined
}

const POLICY_NAME = 'step-up'

export async function loadStepUpPolicy(ctx: Pick<ServerContext, 'db'>, tenantId: string): Promise<StepUpPolicy> {
  return (await loadTenantPolicy<StepUpPolicy>(ctx, tenantId, POLICY_NAME)) ?? { rules: [] }
}

export async function saveStepUpPolicy(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  policy: StepUpPolicy,
  updatedBy: string,
): Promise<void> {
  await saveTenantPolicy(ctx, tenantId, POLICY_NAME, policy, updatedBy)
}

/** How recent a SIM change must be to block SMS factors for this tenant's customers. */
export async function simSwapWindowHours(ctx: Pick<ServerContext, 'db' | 'config'>, tenantId: string): Promise<number> {
  return (await loadStepUpPolicy(ctx, tenantId)).simSwapWindowHours ?? ctx.config.simSwapWindowHours
}
