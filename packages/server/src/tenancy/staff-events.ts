import type { Bus } from '../platform/bus/bus.ts'

/** Said on the bus when staff tokens are revoked or a staff member deactivated: every node cuts their streams. */
export const STAFF_REVOKED_SUBJECT_PREFIX = 'sr.staff.revoked.'

export interface StaffRevokedEvent {
  tenantId: string
  staffId: string
  /** The one token revoked; absent when every token of the staff member ended (a deactivation). */
  tokenId?: string
}

export function publishStaffRevoked(bus: Pick<Bus, 'publish'>, event: StaffRevokedEvent): void {
  bus.publish(STAFF_REVOKED_SUBJECT_PREFIX + event.tenantId, new TextEncoder().encode(JSON.stringify(event)))
}
