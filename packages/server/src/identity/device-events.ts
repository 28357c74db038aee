import type { SecurityNotice } from '@strongroom/sdk/protocol'
import type { Bus } from '../platform/bus/bus.ts'

/** Said on the bus when a device is revoked, so that every node cuts its sockets at once. */
export const DEVICE_REVOKED_SUBJECT_PREFIX = 'sr.device.revoked.'

export interface DeviceRevokedEvent {
  tenantId: string
  deviceId: string
  /** The conversations the device was taken out of: their MLS groups must drop it too. */
  conversationIds: string[]
}

export function publishDeviceRevoked(bus: Bus, event: DeviceRevokedEvent): void {
  bus.publish(DEVICE_REVOKED_SUBJECT_PREFIX + event.tenantId, new TextEncoder().encode(JSON.stringify(event)))
}

/** Said on the bus when a device is suspended: every node cuts its sockets, and nothing else changes. */
export const DEVICE_SUSPENDED_SUBJECT_PREFIX = 'sr.device.suspended.'

export interface DeviceSuspendedEvent {
  tenantId: string
  deviceId: string
}

export function publishDeviceSuspended(bus: Bus, event: DeviceSuspendedEvent): void {
  bus.publish(DEVICE_SUSPENDED_SUBJECT_PREFIX + event.tenantId, new TextEncoder().encode(JSON.stringify(event)))
}

/** Said on the bus when a customer's factors change: every node tells the customer's connected devices. */
export const CUSTOMER_NOTICE_SUBJECT_PREFIX = 'sr.customer.notice.'

export interface CustomerNoticeEvent {
  tenantId: string
  customerId: string
  notice: SecurityNotice
}

export function publishCustomerNotice(bus: Bus, event: CustomerNoticeEvent): void {
  bus.publish(CUSTOMER_NOTICE_SUBJECT_PREFIX + event.tenantId, new TextEncoder().encode(JSON.stringify(event)))
}
