import { consentSigningPayload } from '@strongroom/sdk/consent'
import { compactVerify, importJWK } from 'jose'
import { recordAudit } from '../audit/events.ts'
import { evaluateStepUp, loadStepUpPolicy } from '../auth/step-up-policy.ts'
import { verifyTotp } from '../auth/totp.ts'
import { type DevicePrincipal, deviceEnrolledAt, devicePublicJwk } from '../identity/devices.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import { enqueueWebhook } from '../webhooks/outbox.ts'
import { type ConsentRequest, decide, getConsent } from './consents.ts'
import { signReceipt } from './receipts.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring'>

/**
 * A device approves a payment: its signature must verify with its enrolled key and cover exactly the transaction that
 * was asked (amount, currency, payee, reference, id, expiry and the one-time challenge). Then, in one transaction, the
 * request is decided (once) and a signed receipt is issued and audited.
 */
export async function approveConsent(
  ctx: Ctx,
  receiptKey: SigningKey,
  device: DevicePrincipal,
  consentId: string,
  approval: { signature: string; totpCode?: string | undefined; riskFlags: readonly string[] },
): Promise<ConsentRequest> {
  const consent = await getConsent(ctx, device.tenantId, consentId, device.customerId)
  if (consent.status === 'expired') throw new Problem('consent/expired')
  if (consent.status !== 'pending') throw new Problem('consent/already-decided')
  const jwk = await devicePublicJwk(ctx, device.tenantId, device.deviceId)
  const algorithm = jwk.kty === 'OKP' ? 'EdDSA' : 'ES256'
  let signed: Uint8Array
  try {
    const verified = await compactVerify(approval.signature, await importJWK(jwk, algorithm), {
      algorithms: [algorithm],
    })
    signed = verified.payload
  } catch {
    throw new Problem('consent/signature-invalid', 'the signature does not verify with this device key')
  }
  if (new TextDecoder().decode(signed) !== consentSigningPayload(consent)) {
    throw new Problem('consent/signature-invalid', 'the signed transaction is not the one requested')
  }
  const stepUp = evaluateStepUp(await loadStepUpPolicy(ctx, device.tenantId), {
    action: 'consent.approve',
    amount: consent.amount,
    deviceEnrolledAt: await deviceEnrolledAt(ctx, device.tenantId, device.deviceId),
    riskFlags: approval.riskFlags,
  })
  const refusal =
    stepUp.decision === 'deny'
      ? new Problem('auth/forbidden', `the step-up policy denies this approval (${stepUp.rules.join(', ')})`)
      : stepUp.required.includes('totp') && !approval.totpCode
        ? new Problem('auth/step-up-required', stepUp.reason)
        : undefined
  if (refusal) {
    await recordAudit(ctx.db, {
      tenantId: device.tenantId,
      actor: { kind: 'device', id: device.deviceId },
      action: 'consent.approve',
      target: { kind: 'consent', id: consentId },
      outcome: 'denied',
      reason: refusal.detail,
      details: { policyRules: stepUp.rules },
    })
    throw refusal
  }
  const factors = stepUp.required.includes('totp') ? ['device-key', 'totp'] : ['device-key']
  if (stepUp.required.includes('totp')) {
    await verifyTotp(ctx, device.tenantId, device.customerId, approval.totpCode as string, {
      actor: { kind: 'device', id: device.deviceId },
    })
  }
  const approvedAt = new Date()
  const receipt = await signReceipt(receiptKey, {
    tenantId: device.tenantId,
    consentId,
    customerId: device.customerId,
    transaction: { amount: consent.amount, payee: consent.payee, reference: consent.reference },
    challenge: consent.challenge,
    factor: 'device-key',
    deviceId: device.deviceId,
    keyThumbprint: device.jkt,
    approvedAt,
    factors,
    policy: {
      decision: 'allowed',
      assurance: factors.length > 1 ? 'possession+knowledge' : 'possession',
      reason: stepUp.reason,
      rules: stepUp.rules,
    },
  })
  await ctx.db.transaction().execute(async (trx) => {
    const { requestedBy } = await decide(ctx, trx, device.tenantId, consentId, {
      status: 'approved',
      deviceId: device.deviceId,
      factor: factors.join('+'),
      receipt,
    })
    await notifyRequester(trx, device.tenantId, requestedBy, {
      type: 'consent.approved',
      data: { consentId, status: 'approved', receipt },
    })
    await recordAudit(trx, {
      tenantId: device.tenantId,
      actor: { kind: 'device', id: device.deviceId },
      action: 'consent.approve',
      target: { kind: 'consent', id: consentId },
      outcome: 'success',
      details: { factors, policyRules: stepUp.rules, amount: consent.amount.value, currency: consent.amount.currency },
    })
  })
  return getConsent(ctx, device.tenantId, consentId)
}

/** A device declines: recorded and audited like an approval, without a receipt. */
export async function declineConsent(
  ctx: Ctx,
  device: DevicePrincipal,
  consentId: string,
  reason: string | undefined,
): Promise<ConsentRequest> {
  await getConsent(ctx, device.tenantId, consentId, device.customerId)
  await ctx.db.transaction().execute(async (trx) => {
    const { requestedBy } = await decide(ctx, trx, device.tenantId, consentId, {
      status: 'declined',
      deviceId: device.deviceId,
      declineReason: reason,
    })
    await notifyRequester(trx, device.tenantId, requestedBy, {
      type: 'consent.declined',
      data: { consentId, status: 'declined' },
    })
    await recordAudit(trx, {
      tenantId: device.tenantId,
      actor: { kind: 'device', id: device.deviceId },
      action: 'consent.decline',
      target: { kind: 'consent', id: consentId },
      outcome: 'success',
      reason,
    })
  })
  return getConsent(ctx, device.tenantId, consentId)
}

/** A bank backend that asked for the consent hears of the decision by webhook, queued in the decision's transaction. */
async function notifyRequester(
  db: ServerContext['db'],
  tenantId: string,
  requestedBy: { kind: string; id: string | null },
  event: { type: string; data: Record<string, unknown> },
): Promise<void> {
  if (requestedBy.kind !== 'client' || !requestedBy.id) return
  await enqueueWebhook(db, { tenantId, clientId: requestedBy.id, ...event })
}
