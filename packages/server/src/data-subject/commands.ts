import { closeSync, openSync, unlinkSync, writeFileSync } from 'node:fs'
import { operator } from '../audit/events.ts'
import { type Command, command, out, UsageError, withStorage } from '../platform/command.ts'
import { openArchiveKeyProvider } from '../platform/keyring/open-provider.ts'
import { exportCustomerData } from './export-customer.ts'

/** A data subject's access request, answered from the command line. */
export const dataSubjectCommands: readonly Command[] = [
  command({
    name: 'customer export',
    synopsis: '--tenant ID --customer ID --out FILE',
    summary:
      'export everything held about a customer (a data subject access request) as\none JSON file; needs the archive key file; never overwrites a file',
    options: { tenant: { type: 'string' }, customer: { type: 'string' }, out: { type: 'string' } },
    async run({ tenant: tenantId, customer: customerId, out: file }, { config }) {
      if (!tenantId || !customerId || !file)
        throw new UsageError('customer export needs --tenant, --customer and --out')
      const loaded = config()
      // The file is made first (never over another), so that a refused file does not leave an audited export behind.
      const fd = openSync(file, 'wx', 0o600)
      let document: Awaited<ReturnType<typeof exportCustomerData>>
      try {
        document = await withStorage(loaded, async ({ db, keyring }) => {
          const archiveKek = await openArchiveKeyProvider(loaded, { create: false })
          return exportCustomerData({ db, keyring, archiveKek }, tenantId, customerId, operator)
        })
        writeFileSync(fd, `${JSON.stringify(document, null, 2)}\n`)
      } catch (error) {
        unlinkSync(file)
        throw error
      } finally {
        closeSync(fd)
      }
      out({
        file,
        devices: document.devices.length,
        conversations: document.conversations.length,
        archiveRecords: document.archive.records.length,
        auditEvents: document.auditEvents.length,
      })
    },
  }),
]
