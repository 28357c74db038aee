import type { Bus } from '../platform/bus/bus.ts'

/** Said on the bus when staff tokens are revoked or a staff member deactivated: every node cuts their streams. */
export const STAFF_REVOKED_SUBJECT_PREFIX = 'sr.staff.revoked.'

export interface StaffRevokedEvent {
  tenantId: string
  staffId: string
  /** The one token revoked; absent when every token of the staff member ended (a deactivation). */
  tokenId?: string
}

const encoder = new TextEncoder()

export function publishStaffRevoked(bus: Pick<Bus, 'publish'>, event: StaffRevokedEvent): void {
  bus.publish(STAFF_REVOKED_SUBJECT_PREFIX + event.tenantId, encoder.encode(JSON.stringify(event)))
}

/**
 * Said on the bus (after the commit) when a staff member is added, or their role, name or activation changes: the
 * streams tell the bank's staff who assign conversations, whose consoles read the staff list again.
 */
export const STAFF_CHANGED_SUBJECT_PREFIX = 'sr.staff.changed.'

export interface StaffChangedEvent {
  tenantId: string
  staffId: string
}

export function publishStaffChanged(bus: Pick<Bus, 'publish'>, event: StaffChangedEvent): void {
  bus.publish(STAFF_CHANGED_SUBJECT_PREFIX + event.tenantId, encoder.encode(JSON.stringify(event)))
}
