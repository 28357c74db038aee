import type { IntegrityPolicy } from '@strongroom/sdk/protocol'
import type { AccessRule } from '../platform/http/access-rule.ts'
import type { DevicePrincipal } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'

/**
 * The risk flag a browser's requests carry where the gate applies, as an app's carry its integrity token's flags: the
 * step-up policy reads it (a browser approves only with a user-verified passkey, up to the tenant's limit) and the
 * consent keeps it.
 */
export const WEB_DEVICE_FLAG = 'web-device'

/**
 * The gate for a browser, in place of the integrity token it cannot have: reads, then what the route's own rule says
 * a browser may do there (`forBrowsers` in platform/http/access-rule.ts; `strongroom routes` lists it), as the
 * tenant's policy allows. Throws `integrity/web-device-refused` naming the route otherwise; gives the risk flags its
 * request carries.
 */
export function checkWebDevice(
  device: DevicePrincipal,
  route: string,
  access: AccessRule,
  policy: IntegrityPolicy | undefined,
): string[] {
  if (device.deviceKind !== 'web') throw new TypeError('checkWebDevice is for devices of kind web')
  const allowed = 'browser' in access ? access.browser : undefined
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
