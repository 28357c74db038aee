import { staffRoles, staffScopes } from '@strongroom/sdk/protocol'

/** The scopes are part of the wire schema (a staff token's `scopes`), so the SDK's protocol defines them. */
export const scopes = staffScopes
export type Scope = (typeof scopes)[number]

/** The roles are part of the wire schema (a staff member's `role`), so the SDK's protocol defines them. */
export const roles = staffRoles
export type Role = (typeof roles)[number]

/**
 * conversations:all lets a holder read every conversation of the tenant, not only those it is a member of;
 * conversations:assign lets a supervisor give a conversation to another agent (reassign or transfer).
 * archive:read searches and exports the compliance archive; archive:manage sets its retention, places and releases
 * legal holds and erases a customer by crypto-shredding. customers:export answers a data subject access request: it
 * exports everything held about one customer, archive and audit log included. staff:provision lets the bank's identity
 * provider create, change and deactivate staff over SCIM (a bank backend's scope; admins hold it too). factors:reset removes every TOTP
 * factor and passkey of a customer who lost them (the staff-assisted reset), so that they can enrol afresh.
 * replies:manage writes the bank's canned replies (admins; agents read and insert them). consents:unblock lists the
 * payees customers blocked with "This wasn't me" and lifts a block, with a reason (supervisors and admins).
 */
export const roleScopes: Record<Role, readonly Scope[]> = {
  agent: [
    'conversations:read',
    'conversations:write',
    'customers:write',
    'devices:enrol',
    'devices:revoke',
    'consents:write',
  ],
  supervisor: [
    'conversations:read',
    'conversations:write',
    'conversations:all',
    'conversations:assign',
    'customers:write',
    'devices:enrol',
    'devices:revoke',
    'factors:reset',
    'consents:write',
    'consents:unblock',
  ],
  compliance: [
    'conversations:read',
    'conversations:all',
    'audit:read',
    'archive:read',
    'archive:manage',
    'customers:export',
  ],
  admin: [...scopes],
}

export function isScope(value: string): value is Scope {
  return (scopes as readonly string[]).includes(value)
}
