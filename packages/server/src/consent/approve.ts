import { consentSigningPayload } from '@strongroom/sdk/consent'
import { compactVerify, importJWK } from 'jose'
import { recordAudit } from '../audit/events.ts'
import { type DevicePrincipal, devicePublicJwk } from '../identity/devices.ts'
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
  signature: string,
): Promise<ConsentRequest> {
  const consent = await getConsent(ctx, device.tenantId, consentId, device.customerId)
  if (consent.status === 'expired') throw new Problem('consent/expired')
  if (consent.status !== 'pending') throw new Problem('consent/already-decided')
  const jwk = await devicePublicJwk(ctx, device.tenantId, device.deviceId)
  const algorithm = jwk.kty === 'OKP' ? 'EdDSA' : 'ES256'
  let signed: Uint8Array
  try {
    const verified = await compactVerify(signature, await importJWK(jwk, algorithm), { algorithms: [algorithm] })
    signed = verified.payload
  } catch {
    throw new Problem('consent/signature-invalid', 'the signature does not verify with this device key')
  }
  if (new TextDecoder().decode(signed) !== consentSigningPayload(consent)) {
    throw new Problem('consent/signature-invalid', 'the signed transaction is not the one requested')
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
    policy: { decision: 'allowed', assurance: 'possession', reason: 'enrolled device key signature' },
  })
  await ctx.db.transaction().execute(async (trx) => {
    const { requestedBy } = await decide(ctx, trx, device.tenantId, consentId, {
      status: 'approved',
      deviceId: device.deviceId,
      factor: 'device-key',
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
      details: { factor: 'device-key', amount: consent.amount.value, currency: consent.amount.currency },
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
