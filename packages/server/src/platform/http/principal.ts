import type { Actor } from '../../audit/events.ts'
import type { DevicePrincipal } from '../../identity/devices.ts'
import type { ClientPrincipal } from '../../tenancy/api-clients.ts'
import type { StaffPrincipal } from '../../tenancy/staff.ts'
import { Problem } from './problems.ts'

/**
 * Who is calling: a staff member with a scoped API token, an enrolled device proving its key, or a bank backend (an
 * OAuth client) with a scoped token.
 */
export type Principal = StaffPrincipal | DevicePrincipal | ClientPrincipal

/** The principal as the audit log names it. */
export function actorOf(principal: Principal): Actor {
  if (principal.kind === 'client') return { kind: 'client', id: principal.clientId }
  return principal.kind === 'device'
    ? { kind: 'device', id: principal.deviceId }
    : { kind: 'staff', id: principal.staffId }
}

/** A conversation member is a device or a staff member; a bank backend is never one. */
export function principalMember(principal: Principal): { kind: 'device' | 'staff'; id: string } {
  if (principal.kind === 'client') throw new Problem('auth/forbidden', 'bank backends are not conversation members')
  return principal.kind === 'device'
    ? { kind: 'device', id: principal.deviceId }
    : { kind: 'staff', id: principal.staffId }
}
