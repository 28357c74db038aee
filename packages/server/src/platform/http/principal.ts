import { Problem } from './problems.ts'
import type { Role, Scope } from './roles.ts'

/**
 * Who is calling: a staff member with a scoped API token, an enrolled device proving its key, or a bank backend (an
 * OAuth client) with a scoped token.
 */
export type Principal = StaffPrincipal | DevicePrincipal | ClientPrincipal

/** A staff member with a scoped API token. */
export interface StaffPrincipal {
  kind: 'staff'
  tenantId: string
  staffId: string
  /** The token's id, so that revoking it can close the streams it opened. */
  tokenId: string
  role: Role
  scopes: readonly Scope[]
  tokenExpiresAt: Date
}

/**
 * What a device is: an app, which can attest (App Attest, Key Attestation, Play Integrity), or a browser (the secure
 * chat a pivot link opened, enrolled by the pivot's step-up), which cannot; the tenant's policy says what each may do.
 */
export type DeviceKind = 'app' | 'web'

/** An enrolled device, proving its key (DPoP) on every request. */
export interface DevicePrincipal {
  kind: 'device'
  deviceKind: DeviceKind
  tenantId: string
  deviceId: string
  customerId: string
  jkt: string
  tokenExpiresAt: Date
}

/** A bank backend (an OAuth client) with a scoped token. */
export interface ClientPrincipal {
  kind: 'client'
  tenantId: string
  clientId: string
  scopes: readonly Scope[]
  tokenExpiresAt: Date
}

/** Who did something, as the audit log names it. */
export interface Actor {
  kind: 'staff' | 'device' | 'client' | 'operator' | 'system'
  id: string | null
}

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
