import canonicalize from 'canonicalize'
import { base64url, CompactSign, createLocalJWKSet, type JSONWebKeySet, jwtVerify } from 'jose'
import type { ConsentRequest, PayeeBlock } from './consent-protocol.ts'
import type { DeviceKeys } from './device-keys.ts'

export type { ConsentRequest, PayeeBlock }

/**
 * What a device signs to approve a payment (dynamic linking): exactly the amount, currency, payee and reference that
 * were asked, the request's id and expiry, and the server's one-time challenge, as RFC 8785 canonical JSON. The
 * server rebuilds the same bytes from what it asked and accepts the signature only if they are identical.
 */
export function consentSigningPayload(consent: Omit<ConsentRequest, 'status' | 'createdAt' | 'customerId'>): string {
  return canonicalize({
    type: 'strongroom-consent/v1',
    consentId: consent.id,
    amount: { value: consent.amount.value, currency: consent.amount.currency },
    payee: { name: consent.payee.name, account: consent.payee.account },
    reference: consent.reference,
    challenge: consent.challenge,
    expiresAt: consent.expiresAt,
  }) as string
}

/**
 * The WebAuthn challenge of an approval by passkey (base64url): the SHA-256 of exactly the payload a device key
 * signs, so the assertion is bound to the amount, payee, reference and the server's one-time challenge just the same.
 * Pass it (decoded to bytes) as `publicKey.challenge` to `navigator.credentials.get`, with `userVerification: 'required'`.
 */
export async function consentPasskeyChallenge(
  consent: Omit<ConsentRequest, 'status' | 'createdAt' | 'customerId'>,
): Promise<string> {
  const payload = new TextEncoder().encode(consentSigningPayload(consent))
  return base64url.encode(new Uint8Array(await crypto.subtle.digest('SHA-256', payload)))
}

/** The device's approval: a compact JWS over the signing payload, made with its non-extractable key. */
export async function signConsent(keys: DeviceKeys, consent: ConsentRequest): Promise<string> {
  return new CompactSign(new TextEncoder().encode(consentSigningPayload(consent)))
    .setProtectedHeader({ alg: keys.algorithm, typ: 'strongroom-consent+jws' })
    .sign(keys.privateKey)
}

/** An amount in minor units as people read it: 125000 EUR → "EUR 1,250.00". */
export function formatAmount(amount: { value: number; currency: string }, locale = 'en-GB'): string {
  const digits = new Intl.NumberFormat(locale, { style: 'currency', currency: amount.currency }).resolvedOptions()
    .maximumFractionDigits
  const major = amount.value / 10 ** (digits ?? 2)
  return `${amount.currency} ${major.toLocaleString(locale, { minimumFractionDigits: digits, maximumFractionDigits: digits })}`
}

/** What a verified consent receipt says: the transaction exactly as approved, how, by which device, when. */
export interface ConsentReceipt {
  consentId: string
  tenantId: string
  customerId: string
  transaction: {
    amount: { value: number; currency: string }
    payee: { name: string; account: string }
    reference: string
  }
  /** What approved it: `device-key`, `passkey` or `sms-reply`. */
  factor: string
  /** Every factor the approval relied on, the step-up policy's included. */
  factors: string[]
  deviceId: string | null
  approvedAt: string
  policy: { decision: string; assurance: string; reason: string; rules: string[] }
  /** The receipt key that signed it (`kid`), listed in the JWKS. */
  keyId: string
}

/**
 * Verifies a consent receipt (ES256 JWS) with the server's JWKS (`/.well-known/jwks.json`, or a copy kept offline)
 * and, given the consent it should be for, that it covers exactly that consent's amount, payee and reference. Throws
 * when the signature, the issuer, the type or the transaction does not hold.
 *
 * @example
 * const receipt = await verifyConsentReceipt(consent.receipt, await client.receiptKeys(), consent)
 */
export async function verifyConsentReceipt(
  receipt: string,
  jwks: JSONWebKeySet,
  expected?: Pick<ConsentRequest, 'id' | 'amount' | 'payee' | 'reference'>,
): Promise<ConsentReceipt> {
  const { payload, protectedHeader } = await jwtVerify(receipt, createLocalJWKSet(jwks), {
    issuer: 'strongroom',
    typ: 'strongroom-receipt+jwt',
    algorithms: ['ES256'],
  })
  const claims = payload as unknown as Omit<ConsentReceipt, 'consentId' | 'tenantId' | 'keyId'> & { tid: string }
  const verified: ConsentReceipt = {
    consentId: String(payload.sub),
    tenantId: claims.tid,
    customerId: claims.customerId,
    transaction: claims.transaction,
    factor: claims.factor,
    factors: claims.factors,
    deviceId: claims.deviceId,
    approvedAt: claims.approvedAt,
    policy: claims.policy,
    keyId: String(protectedHeader.kid),
  }
  if (expected) {
    const asked = { amount: expected.amount, payee: expected.payee, reference: expected.reference }
    if (verified.consentId !== expected.id || canonicalize(verified.transaction) !== canonicalize(asked)) {
      throw new Error('the receipt is not for this consent and transaction')
    }
  }
  return verified
}
