import { operator } from '../audit/events.ts'
import { type Command, command, out, UsageError, withStorage } from '../platform/command.ts'
import { findTenant } from '../tenancy/tenants.ts'
import { createCustomer, E164_PATTERN } from './customers.ts'
import { issueEnrolmentCode } from './enrolment-codes.ts'

/** Customers and the codes their devices enrol with. */
export const identityCommands: readonly Command[] = [
  command({
    name: 'customer create',
    synopsis: '--tenant ID --ref REF --name NAME [--phone E164]',
    summary:
      "register a customer (REF is the bank's own customer id; the phone number\nmatches their texts and receives their SMS codes)",
    options: {
      tenant: { type: 'string' },
      ref: { type: 'string' },
      name: { type: 'string' },
      phone: { type: 'string' },
    },
    async run({ tenant: tenantId, ref, name, phone }, { config }) {
      if (!tenantId || !ref || !name) throw new UsageError('customer create needs --tenant, --ref and --name')
      if (phone !== undefined && !new RegExp(E164_PATTERN).test(phone)) {
        throw new UsageError('--phone must be a number in E.164, e.g. +447700900123')
      }
      out(
        await withStorage(config(), async ({ db, keyring }) => {
          if (!(await findTenant({ db }, tenantId))) throw new UsageError(`no tenant ${tenantId}`)
          return createCustomer({ db, keyring }, tenantId, { externalRef: ref, displayName: name, phoneNumber: phone })
        }),
      )
    },
  }),
  command({
    name: 'enrolment-code',
    synopsis: '--tenant ID --customer ID',
    summary: 'issue a single-use code with which one device of the customer enrols',
    options: { tenant: { type: 'string' }, customer: { type: 'string' } },
    async run({ tenant: tenantId, customer: customerId }, { config }) {
      if (!tenantId || !customerId) throw new UsageError('enrolment-code needs --tenant and --customer')
      const loaded = config()
      out(
        await withStorage(loaded, ({ db }) =>
          issueEnrolmentCode({ db, config: loaded }, tenantId, customerId, operator),
        ),
      )
    },
  }),
]
