import type { DevicePrincipal } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import type { IntegrityPolicy } from './policy.ts'

/**
 * The risk flag a browser's requests carry where the gate applies, as an app's carry its integrity token's flags: the
 * step-up policy reads it (a browser approves only with a user-verified passkey, up to the tenant's limit) and the
 * consent keeps it.
 */
export const WEB_DEVICE_FLAG = 'web-device'

/**
 * What a browser may do beyond reading, where apps need an integrity token, route by route: `chat` while the tenant's
 * policy lets browsers chat (the secure chat's messages, read markers and its end-to-end group), `always` for what
 * keeps a browser safe to use (registering and using a passkey, redeeming its pivot link, declining a payment, and
 * approving one with a passkey, which the step-up policy then limits). Anything else (runtime secrets, attestation,
 * approving with the device key, factor changes, device management) is the app's.
 */
export const WEB_DEVICE_ROUTES: Readonly<Record<string, 'chat' | 'always'>> = {
  'POST /v1/conversations/:conversationId/messages': 'chat',
  'POST /v1/conversations/:conversationId/markers': 'chat',
  'POST /v1/e2e/credentials': 'chat',
  'POST /v1/e2e/key-packages': 'chat',
  'DELETE /v1/e2e/welcomes/:welcomeId': 'chat',
  'POST /v1/conversations/:conversationId/e2e/key-packages/claim': 'chat',
  'PUT /v1/conversations/:conversationId/e2e/group': 'chat',
  'POST /v1/conversations/:conversationId/e2e/commits': 'chat',
  'POST /v1/conversations/:conversationId/e2e/readd-requests': 'chat',
  'GET /v1/stream': 'chat',
  'POST /v1/pivot/redeem': 'always',
  'POST /v1/passkeys/registration/options': 'always',
  'POST /v1/passkeys/registration': 'always',
  'POST /v1/passkeys/authentication/options': 'always',
  'POST /v1/consents/:consentId/approve/passkey': 'always',
  'POST /v1/consents/:consentId/decline': 'always',
}

/**
 * The gate for a browser, in place of the integrity token it cannot have: reads, then the routes above as the
 * tenant's policy allows. Throws `integrity/web-device-refused` naming the route otherwise; gives the risk flags its
 * request carries.
 */
export function checkWebDevice(device: DevicePrincipal, route: string, policy: IntegrityPolicy | undefined): string[] {
  if (device.deviceKind !== 'web') throw new TypeError('checkWebDevice is for devices of kind web')
  const allowed = WEB_DEVICE_ROUTES[route]
  if (allowed === 'always' || (allowed === 'chat' && policy?.webDevices?.chat !== false)) return [WEB_DEVICE_FLAG]
  if (allowed === undefined && route.startsWith('GET ')) return [WEB_DEVICE_FLAG]
  throw new Problem(
    'integrity/web-device-refused',
    allowed === 'chat' ? 'the bank does not let browsers chat' : `a browser may not use ${route}`,
  )
}

/** A browser never holds runtime secrets: they go only to apps that attested, encrypted to their key. */
export function refuseWebDeviceSecrets(device: DevicePrincipal): void {
  if (device.deviceKind === 'web') {
    throw new Problem('integrity/web-device-refused', 'a browser never receives runtime secrets')
  }
}
