import type { PivotFactor, PivotRedemption, PivotStepUpOptions } from './channel-protocol.ts'
import { type EnrolledDevice, type EnrolOptions, enrolWithProof } from './client.ts'
import { type PublicRequestOptions, postWithoutCredentials } from './public-request.ts'

/**
 * The customer's side of the pivot from a public channel (SMS, WhatsApp, Messenger) into the secure one. The bank
 * sends a link whose token travels in the URL fragment (`/secure/#t=<token>`); the page or app opening it:
 *
 * 1. `openPivotLink`: says whether the link can still be used (and tells the agent it was opened);
 * 2. an enrolled device of the customer redeems it with `client.redeemPivotLink(token)`;
 * 3. otherwise it steps up: `pivotStepUpOptions` says which factors the customer has, `sendPivotSmsCode` texts a code
 *    to their number on file, and `enrolWithPivotLink` enrols this browser's key as the customer's new device and
 *    redeems the link, with the passkey assertion or the code.
 *
 * Every refusal is a StrongroomError whose type ends in `/pivot/token-expired`, `/pivot/token-used`,
 * `/pivot/token-revoked` (a newer link replaced it), `/pivot/invalid-token`, `/auth/passkey-invalid` or `/auth/invalid-code`.
 */

export type { PivotFactor, PivotRedemption, PivotStepUpOptions }

export interface PivotLinkOptions extends PublicRequestOptions {
  /** The link's token, as found after `#t=` in the URL. */
  token: string
}

/** The token of a pivot link, from its URL (`…/secure/#t=<token>`), or undefined if it carries none. */
export function pivotTokenOf(url: string | URL): string | undefined {
  let hash: string
  try {
    hash = new URL(url).hash
  } catch {
    return undefined
  }
  const token = new URLSearchParams(hash.slice(1)).get('t')
  return token && /^[A-Za-z0-9_-]{1,100}$/.test(token) ? token : undefined
}

/** Says whether the link can still be used (and marks it opened); refused with why when it cannot. */
export function openPivotLink(options: PivotLinkOptions): Promise<{ expiresAt: string }> {
  return postWithoutCredentials(options, 'POST /v1/pivot/open', { token: options.token })
}

/** The factors the link's customer can step up with; passkey options carry a fresh single-use challenge. */
export function pivotStepUpOptions(options: PivotLinkOptions): Promise<PivotStepUpOptions> {
  return postWithoutCredentials(options, 'POST /v1/pivot/step-up/options', { token: options.token })
}

/** Texts a one-time code to the link's customer's number on file (refused after a recent SIM swap). */
export function sendPivotSmsCode(options: PivotLinkOptions): Promise<{ expiresAt: string }> {
  return postWithoutCredentials(options, 'POST /v1/pivot/step-up/sms', { token: options.token })
}

/**
 * Steps up with a link: enrols this device's key (a fresh non-extractable one unless `keys` is given) as a new device
 * of the link's customer, proven by the factor, and redeems the link in the same step.
 *
 * @example
 * const options = await pivotStepUpOptions({ baseUrl, token })
 * const credential = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options.passkey) })
 * const { client, secureConversationId } = await enrolWithPivotLink({
 *   baseUrl, token, label: 'Browser', factor: { kind: 'passkey', assertion: credential.toJSON() },
 * })
 */
export async function enrolWithPivotLink(
  options: EnrolOptions & { baseUrl: string; token: string; factor: PivotFactor },
): Promise<EnrolledDevice & PivotRedemption> {
  const { enrolled, answer } = await enrolWithProof(options, 'POST /v1/pivot/enrol', {
    token: options.token,
    label: options.label,
    factor: options.factor,
  })
  return {
    ...enrolled,
    secureConversationId: answer.secureConversationId,
    importedMessages: answer.importedMessages,
  }
}
