import type { ConsentRequest } from '../consent.ts'
import type { NewConsent } from '../consent-protocol.ts'
import type { CustomerFactor } from '../factors.ts'
import type { DeviceVerdict, NewCustomer } from '../identity-protocol.ts'
import type { ClientClass } from './client-core.ts'

export type { NewConsent }

/**
 * What the bank calls on its customers' behalf, by staff or by a backend holding the scope (the access table's
 * `staff` rule with `customers:write`, `devices:enrol` or `consents:write`, the scopes a backend may be given).
 */
export function withBankCalls<Base extends ClientClass>(base: Base) {
  return class BankCalls extends base {
    createCustomer(input: NewCustomer) {
      return this.call('POST /v1/customers', { body: input })
    }

    /** A customer, to show their name (`customers:write`). */
    getCustomer(customerId: string) {
      return this.call('GET /v1/customers/:customerId', { params: { customerId } })
    }

    /** A single-use code with which one device of the customer enrols; `deviceId` is listed as pending until then. */
    issueEnrolmentCode(customerId: string) {
      return this.call('POST /v1/customers/:customerId/enrolment-codes', { params: { customerId } })
    }

    listDevices(customerId: string) {
      return this.call('GET /v1/customers/:customerId/devices', { params: { customerId } })
    }

    /** Asks the carrier whether this number's SIM changed within the bank's window (audited, not the number). */
    checkSimSwap(phoneNumber: string) {
      return this.call('POST /v1/risk/sim-swap', { body: { phoneNumber } })
    }

    /** The integrity policy's latest decision for each of the customer's devices that attested. */
    async deviceVerdicts(customerId: string): Promise<DeviceVerdict[]> {
      return (await this.call('GET /v1/customers/:customerId/device-integrity', { params: { customerId } })).devices
    }

    /** A customer's authenticator apps and passkeys (a factor still cooling off is a risk signal). */
    async customerFactors(customerId: string): Promise<CustomerFactor[]> {
      return (await this.call('GET /v1/customers/:customerId/factors', { params: { customerId } })).factors
    }

    /** Asks a customer to confirm a payment. */
    requestConsent(input: NewConsent) {
      return this.call('POST /v1/consents', { body: input })
    }

    /** A conversation's consent requests, newest first (20 unless `limit` says otherwise, at most 100). */
    async listConsents(conversationId: string, limit?: number): Promise<ConsentRequest[]> {
      return (await this.call('GET /v1/consents', { query: { conversationId, limit } })).consents
    }
  }
}
