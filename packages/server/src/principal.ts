import type { Actor } from './audit/events.ts'
import type { DevicePrincipal } from './identity/devices.ts'
import type { StaffPrincipal } from './tenancy/staff.ts'

/** Who is calling: a staff member with a scoped API token, or an enrolled device proving its key. */
export type Principal = StaffPrincipal | DevicePrincipal

/** The principal as the audit log names it. */
export function actorOf(principal: Principal): Actor {
  return principal.kind === 'device'
    ? { kind: 'device', id: principal.deviceId }
    : { kind: 'staff', id: principal.staffId }
}

export function principalMember(principal: Principal): { kind: 'device' | 'staff'; id: string } {
  return principal.kind === 'device'
    ? { kind: 'device', id: principal.deviceId }
    : { kind: 'staff', id: principal.staffId }
}
