import type { AuthenticationResponseJSON } from '@simplewebauthn/server'
import { consentPasskeyChallenge, consentSigningPayload } from '@strongroom/sdk/consent'
import type { StepUpPolicy } from '@strongroom/sdk/protocol'
import { compactVerify, importJWK } from 'jose'
import { type Actor, recordAudit } from '../audit/events.ts'
import { verifyPasskeyAssertion } from '../auth/passkeys.ts'
import { verifySmsOtp } from '../auth/sms-otp.ts'
import {
  assessFactors,
  coolingOffUntil,
  evaluateStepUp,
  type FactorAssessment,
  loadStepUpPolicy,
  type PresentedFactor,
  type StepUpDecision,
} from '../auth/step-up-policy.ts'
import { verifyTotp } from '../auth/totp.ts'
import {
  type DevicePrincipal,
  deviceEnrolledAt,
  deviceEnrolmentEvidence,
  devicePublicJwk,
} from '../identity/devices.ts'
import { algorithmsForKey } from '../identity/dpop.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import type { TenantSigningKeys } from '../platform/keyring/signing-keys.ts'
import { webhookClientsOf } from '../tenancy/api-clients.ts'
import { enqueueWebhook } from '../webhooks/outbox.ts'
import { type ConsentRequest, decide, getConsent, payeeIndex, publishConsentUpdate } from './consents.ts'
import { type ReceiptProof, signReceipt } from './receipts.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'config' | 'bus'>

/** The consent as its customer's device sees it, still open for a decision. */
async function pendingConsent(ctx: Ctx, device: DevicePrincipal, consentId: string): Promise<ConsentRequest> {
  const consent = await getConsent(ctx, device.tenantId, consentId, device.customerId)
  if (consent.status === 'expired') throw new Problem('consent/expired')
  if (consent.status !== 'pending') throw new Problem('consent/already-decided')
  return consent
}

/**
 * A device approves a payment: its signature must verify with its enrolled key and cover exactly the transaction that
 * was asked (amount, currency, payee, reference, id, expiry and the one-time challenge). Then, in one transaction, the
 * request is decided (once) and a signed receipt is issued and audited.
 */
export async function approveConsent(
  ctx: Ctx,
  receiptKeys: TenantSigningKeys,
  device: DevicePrincipal,
  consentId: string,
  approval: {
    signature: string
    totpCode?: string | undefined
    smsCode?: string | undefined
    riskFlags: readonly string[]
  },
): Promise<ConsentRequest> {
  const consent = await pendingConsent(ctx, device, consentId)
  const jwk = await devicePublicJwk(ctx, device.tenantId, device.deviceId)
  const algorithms = algorithmsForKey(jwk)
  let signed: Uint8Array
  try {
    const verified = await compactVerify(approval.signature, await importJWK(jwk, algorithms[0]), { algorithms })
    signed = verified.payload
  } catch {
    throw new Problem('consent/signature-invalid', 'the signature does not verify with this device key')
  }
  if (new TextDecoder().decode(signed) !== consentSigningPayload(consent)) {
    throw new Problem('consent/signature-invalid', 'the signed transaction is not the one requested')
  }
  const presented: PresentedFactor[] = [{ factor: 'device-key' }]
  if (approval.totpCode) presented.push({ factor: 'totp' })
  if (approval.smsCode) presented.push({ factor: 'sms-otp' })
  const { stepUp, factors, policy } = await applyStepUp(ctx, device, consent, presented, approval.riskFlags)
  if (factors.used.includes('totp')) {
    const totp = await verifyTotp(ctx, device.tenantId, device.customerId, approval.totpCode as string, {
      actor: { kind: 'device', id: device.deviceId },
    })
    await refuseCoolingOff(ctx, device, consent, policy, stepUp, { factor: 'totp', activatedAt: totp.activatedAt })
  }
  if (factors.used.includes('sms-otp')) {
    await verifySmsOtp(ctx, {
      tenantId: device.tenantId,
      customerId: device.customerId,
      code: approval.smsCode as string,
      actor: { kind: 'device', id: device.deviceId },
    })
  }
  return issueApproval(ctx, receiptKeys, approverOf(device), consent, {
    stepUp,
    factors,
    proof: { factor: 'device-key', keyThumbprint: device.jkt, deviceKey: jwk, deviceSignature: approval.signature },
  })
}

/**
 * A customer approves a payment with a passkey, from their enrolled device: the WebAuthn challenge must be the
 * SHA-256 of the very payload the device-key path signs (amount, payee, reference, id, expiry and the server's
 * one-time challenge), the passkey the customer's, the user verified. Everything after that is the device-key path's:
 * the step-up policy (where a passkey with user verification is a strong factor), one decision, a signed receipt.
 */
export async function approveConsentWithPasskey(
  ctx: Ctx,
  receiptKeys: TenantSigningKeys,
  device: DevicePrincipal,
  consentId: string,
  approval: { assertion: AuthenticationResponseJSON; riskFlags: readonly string[] },
): Promise<ConsentRequest> {
  const consent = await pendingConsent(ctx, device, consentId)
  const passkey = await verifyPasskeyAssertion(ctx, device.tenantId, approval.assertion, {
    challenge: { value: await consentPasskeyChallenge(consent) },
    owner: { kind: 'customer', id: device.customerId },
    audit: {
      action: 'consent.approve',
      actor: { kind: 'device', id: device.deviceId },
      target: { kind: 'consent', id: consentId },
    },
    refusal: 'consent/signature-invalid',
  })
  const presented: PresentedFactor[] = [{ factor: 'passkey', userVerified: passkey.userVerified }]
  const { stepUp, factors, policy } = await applyStepUp(ctx, device, consent, presented, approval.riskFlags)
  await refuseCoolingOff(ctx, device, consent, policy, stepUp, { factor: 'passkey', activatedAt: passkey.createdAt })
  return issueApproval(ctx, receiptKeys, approverOf(device), consent, {
    stepUp,
    factors,
    proof: {
      factor: 'passkey',
      passkey: { credentialId: passkey.credentialId, userVerified: passkey.userVerified, backedUp: passkey.backedUp },
    },
  })
}

/** Evaluates the tenant's step-up policy for this approval and refuses, audited, when it denies or needs more. */
async function applyStepUp(
  ctx: Ctx,
  device: DevicePrincipal,
  consent: ConsentRequest,
  presented: readonly PresentedFactor[],
  riskFlags: readonly string[],
): Promise<{ stepUp: StepUpDecision; factors: FactorAssessment; policy: StepUpPolicy }> {
  const policy = await loadStepUpPolicy(ctx, device.tenantId)
  const stepUp = evaluateStepUp(policy, {
    action: 'consent.approve',
    amount: consent.amount,
    deviceEnrolledAt: await deviceEnrolledAt(ctx, device.tenantId, device.deviceId),
    riskFlags,
  })
  const factors = assessFactors(stepUp, presented)
  const refusal =
    stepUp.decision === 'deny'
      ? new Problem(
          'auth/forbidden',
          `the step-up policy denies this approval: ${stepUp.reason}${stepUp.rules.length > 0 ? ` (${stepUp.rules.join(', ')})` : ''}`,
        )
      : factors.missing.length > 0
        ? new Problem('auth/step-up-required', `requires ${factors.missing.join(', ')}`)
        : undefined
  if (refusal) {
    await auditStepUpRefusal(ctx, device, consent, stepUp, refusal, { presented: presented.map((p) => p.factor) })
    throw refusal
  }
  return { stepUp, factors, policy }
}

/**
 * Cooling-off: a factor the customer added less than the tenant's period ago satisfies no step-up the policy asks
 * for, so that a factor swapped in by whoever holds one enrolled device cannot approve a large payment at once.
 */
async function refuseCoolingOff(
  ctx: Ctx,
  device: DevicePrincipal,
  consent: ConsentRequest,
  policy: StepUpPolicy,
  stepUp: StepUpDecision,
  relied: { factor: 'totp' | 'passkey'; activatedAt: Date },
): Promise<void> {
  if (stepUp.required.length === 0) return
  const until = coolingOffUntil(policy, relied.activatedAt)
  if (!until) return
  const refusal = new Problem(
    'auth/step-up-required',
    `the ${relied.factor} factor was added less than ${policy.factorCoolingOffHours} hours ago`,
  )
  await auditStepUpRefusal(ctx, device, consent, stepUp, refusal, { coolingOffUntil: until.toISOString() })
  throw refusal
}

function auditStepUpRefusal(
  ctx: Ctx,
  device: DevicePrincipal,
  consent: ConsentRequest,
  stepUp: StepUpDecision,
  refusal: Problem,
  details: Record<string, unknown>,
) {
  return recordAudit(ctx.db, {
    tenantId: device.tenantId,
    actor: { kind: 'device', id: device.deviceId },
    action: 'consent.approve',
    target: { kind: 'consent', id: consent.id },
    outcome: 'denied',
    reason: refusal.detail,
    details: { policyRules: stepUp.rules, ...details },
  })
}

/** Who approves: an enrolled device, or (by SMS reply) the customer with no device. */
export interface Approver {
  tenantId: string
  customerId: string
  deviceId: string | null
  actor: Actor
}

const approverOf = (device: DevicePrincipal): Approver => ({
  tenantId: device.tenantId,
  customerId: device.customerId,
  deviceId: device.deviceId,
  actor: { kind: 'device', id: device.deviceId },
})

/** Signs the receipt and, in one transaction, decides the request (once), tells the bank and audits it. */
export async function issueApproval(
  ctx: Ctx,
  receiptKeys: TenantSigningKeys,
  device: Approver,
  consent: ConsentRequest,
  approval: { stepUp: StepUpDecision; factors: FactorAssessment; proof: ReceiptProof },
): Promise<ConsentRequest> {
  const { stepUp, factors } = approval
  const consentId = consent.id
  const approvedAt = new Date()
  const receipt = await signReceipt(await receiptKeys.for(device.tenantId), {
    tenantId: device.tenantId,
    consentId,
    customerId: device.customerId,
    transaction: { amount: consent.amount, payee: consent.payee, reference: consent.reference },
    challenge: consent.challenge,
    deviceId: device.deviceId,
    deviceEnrolment:
      device.deviceId === null ? null : await deviceEnrolmentEvidence(ctx, device.tenantId, device.deviceId),
    approvedAt,
    factors: factors.used,
    ...approval.proof,
    policy: { decision: 'allowed', assurance: factors.assurance, reason: stepUp.reason, rules: stepUp.rules },
  })
  const decided = await ctx.db.transaction().execute(async (trx) => {
    const decided = await decide(ctx, trx, device.tenantId, consentId, {
      status: 'approved',
      deviceId: device.deviceId,
      factor: factors.used.join('+'),
      receipt,
    })
    await notifyRequester(trx, device.tenantId, decided.requestedBy, {
      type: 'consent.approved',
      data: { consentId, status: 'approved', receipt },
    })
    await recordAudit(trx, {
      tenantId: device.tenantId,
      actor: device.actor,
      action: 'consent.approve',
      target: { kind: 'consent', id: consentId },
      outcome: 'success',
      details: {
        factors: factors.used,
        policyRules: stepUp.rules,
        amount: consent.amount.value,
        currency: consent.amount.currency,
      },
    })
    return decided
  })
  publishConsentUpdate(ctx, device.tenantId, { id: consentId, ...decided }, { status: 'approved' })
  return getConsent(ctx, device.tenantId, consentId)
}

/**
 * A device declines: recorded and audited like an approval, without a receipt. Declined as "This wasn't me"
 * (`fraud`), it is also reported to every bank backend with a webhook (`consent.fraud_reported`, whoever asked for
 * the payment: the bank's fraud team may listen elsewhere than its payments), and with `blockPayee` further requests
 * to the same payee account for this customer are refused until the bank clears it.
 */
export async function declineConsent(
  ctx: Ctx,
  device: DevicePrincipal,
  consentId: string,
  input: { reason?: string | undefined; fraud?: boolean | undefined; blockPayee?: boolean | undefined },
): Promise<ConsentRequest> {
  const consent = await getConsent(ctx, device.tenantId, consentId, device.customerId)
  if (input.blockPayee && !input.fraud) throw new Problem('request/invalid', 'blockPayee goes with a fraud report')
  const fraud = input.fraud
    ? { blockedPayeeIndex: input.blockPayee ? await payeeIndex(ctx, device.tenantId, consent.payee.account) : null }
    : undefined
  const decided = await ctx.db.transaction().execute(async (trx) => {
    const decided = await decide(ctx, trx, device.tenantId, consentId, {
      status: 'declined',
      deviceId: device.deviceId,
      declineReason: input.reason,
      ...(fraud ? { fraud } : {}),
    })
    await notifyRequester(trx, device.tenantId, decided.requestedBy, {
      type: 'consent.declined',
      data: { consentId, status: 'declined', ...(fraud ? { fraudReported: true } : {}) },
    })
    if (fraud) await reportFraud(trx, device, consent, decided.conversationId, fraud.blockedPayeeIndex !== null)
    await recordAudit(trx, {
      tenantId: device.tenantId,
      actor: { kind: 'device', id: device.deviceId },
      action: 'consent.decline',
      target: { kind: 'consent', id: consentId },
      outcome: 'success',
      reason: input.reason,
      ...(fraud ? { details: { fraudReported: true, payeeBlocked: fraud.blockedPayeeIndex !== null } } : {}),
    })
    return decided
  })
  publishConsentUpdate(ctx, device.tenantId, { id: consentId, ...decided }, { status: 'declined', fraud: !!fraud })
  return getConsent(ctx, device.tenantId, consentId)
}

/** "This wasn't me": every bank backend with a webhook hears of it, in the decision's transaction. */
async function reportFraud(
  db: ServerContext['db'],
  device: DevicePrincipal,
  consent: ConsentRequest,
  conversationId: string | null,
  payeeBlocked: boolean,
): Promise<void> {
  const data = {
    consentId: consent.id,
    customerId: device.customerId,
    conversationId,
    deviceId: device.deviceId,
    amount: consent.amount,
    payee: consent.payee,
    reference: consent.reference,
    payeeBlocked,
  }
  for (const clientId of await webhookClientsOf({ db }, device.tenantId)) {
    await enqueueWebhook(db, { tenantId: device.tenantId, clientId, type: 'consent.fraud_reported', data })
  }
}

/** A bank backend that asked for the consent hears of the decision by webhook, queued in the decision's transaction. */
export async function notifyRequester(
  db: ServerContext['db'],
  tenantId: string,
  requestedBy: { kind: string; id: string | null },
  event: { type: string; data: Record<string, unknown> },
): Promise<void> {
  if (requestedBy.kind !== 'client' || !requestedBy.id) return
  await enqueueWebhook(db, { tenantId, clientId: requestedBy.id, ...event })
}
