import type { FactorProof } from '../factors.ts'
import type { PasskeyRegistrationCredential } from '../passkeys.ts'
import type { ClientCore } from './client-core.ts'

/**
 * Where a principal registers its passkeys: a device's customer under /v1/passkeys, a staff member their own under
 * /v1/staff/passkey. The two flows are the same but for the path.
 */
export type PasskeyRoutes = '/v1/passkeys' | '/v1/staff/passkey'

/** The options for `navigator.credentials.create`. */
export function passkeyRegistrationOptionsAt(client: ClientCore, routes: PasskeyRoutes) {
  return client.call(`POST ${routes}/registration/options`)
}

/** Sends `credential.toJSON()` from `navigator.credentials.create`, with the factor proof a step-up asks for. */
export function registerPasskeyAt(
  client: ClientCore,
  routes: PasskeyRoutes,
  credential: PasskeyRegistrationCredential,
  stepUp?: FactorProof,
) {
  return client.call(`POST ${routes}/registration`, { body: { credential, ...(stepUp ? { stepUp } : {}) } })
}
