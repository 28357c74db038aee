import { exportJWK, type JWK } from 'jose'
import type { DeviceEnrolmentEvidence } from '../identity/devices.ts'
import type { ServerContext } from '../platform/context.ts'
import { signJwt } from '../platform/keyring/jws.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import { verificationKeys } from '../platform/keyring/signing-keys.ts'

export const RECEIPT_TYPE = 'strongroom-receipt+jwt'
export const RECEIPT_ISSUER = 'strongroom'

/**
 * What approved it: the device key's signature (its thumbprint, its public key and the compact JWS it made over the
 * exact RFC 8785 payload, so the customer's act verifies offline without trusting the bank), or a passkey assertion
 * (its credential).
 */
export type ReceiptProof =
  | { factor: 'device-key'; keyThumbprint: string; deviceKey: JWK; deviceSignature: string }
  | { factor: 'passkey'; passkey: { credentialId: string; userVerified: boolean; backedUp: boolean } }
  /** A reply to an SMS from the customer's number on file, with the request's one-time code: no device. */
  | { factor: 'sms-reply'; smsConfirmationId: string }

export type ReceiptClaims = ReceiptProof & {
  tenantId: string
  consentId: string
  customerId: string
  transaction: {
    amount: { value: number; currency: string }
    payee: { name: string; account: string }
    reference: string
  }
  challenge: string
  /** The device whose session approved it; null for an SMS reply. */
  deviceId: string | null
  /** How that device came to be the customer's (when, by what, and the audit event): null for an SMS reply. */
  deviceEnrolment: DeviceEnrolmentEvidence | null
  approvedAt: Date
  /** Every factor the approval relied on: the device key or a passkey, and what the step-up policy added. */
  factors: string[]
  policy: { decision: 'allowed'; assurance: string; reason: string; rules: string[] }
}

/**
 * The bank's proof of consent: a JWS (ES256) over the transaction exactly as approved, the factor and device that
 * approved it, when, and the policy decision. Anyone holding the JWKS verifies it offline; a changed cent or payee
 * breaks the signature.
 */
export async function signReceipt(key: SigningKey, claims: ReceiptClaims): Promise<string> {
  return signJwt(key, RECEIPT_TYPE, {
    tid: claims.tenantId,
    customerId: claims.customerId,
    transaction: claims.transaction,
    challenge: claims.challenge,
    factor: claims.factor,
    factors: claims.factors,
    deviceId: claims.deviceId,
    deviceEnrolment: claims.deviceEnrolment,
    ...(claims.factor === 'device-key'
      ? { keyThumbprint: claims.keyThumbprint, deviceKey: claims.deviceKey, deviceSignature: claims.deviceSignature }
      : claims.factor === 'passkey'
        ? { passkey: claims.passkey }
        : { smsConfirmationId: claims.smsConfirmationId }),
    approvedAt: claims.approvedAt.toISOString(),
    policy: claims.policy,
    iss: RECEIPT_ISSUER,
    sub: claims.consentId,
    iat: Math.floor(claims.approvedAt.getTime() / 1000),
  })
}

/**
 * The JWKS that verifies receipts and webhooks: every receipt key there has been, so rotation keeps old receipts
 * verifiable. With `tenantId`, one bank's: its own keys (and the deployment's, which signed its receipts before banks
 * had keys of their own), which is what that bank pins.
 */
export async function receiptJwks(ctx: Pick<ServerContext, 'db'>, tenantId?: string): Promise<{ keys: JWK[] }> {
  const keys = await verificationKeys(ctx.db, 'consent-receipt', tenantId === undefined ? {} : { tenantId })
  return {
    keys: await Promise.all(
      [...keys].map(async ([kid, key]) => ({ ...(await exportJWK(key)), kid, alg: 'ES256', use: 'sig' })),
    ),
  }
}
