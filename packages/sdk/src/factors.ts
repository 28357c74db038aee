import type { PasskeyAssertion } from './passkeys.ts'

/** A customer's authenticator app (TOTP) or passkey, as the customer's devices and the console list it. */
export interface CustomerFactor {
  id: string
  kind: 'totp' | 'passkey'
  status: 'pending' | 'active'
  createdAt: string
  activatedAt: string | null
  /** Until when the factor satisfies no high-value step-up (the bank's cooling-off period); null when it does. */
  coolingOffUntil: string | null
}

/**
 * The step-up that proves a change to a customer's factors while they hold one: a code of the active authenticator
 * app, or a passkey assertion (`navigator.credentials.get` with the options of `passkeyAuthenticationOptions()`).
 *
 * @example
 * const options = await client.passkeyAuthenticationOptions()
 * await client.removeFactor(factorId, { passkey: await getAssertion(options) })
 */
export type FactorProof = { totpCode: string } | { passkey: PasskeyAssertion }
