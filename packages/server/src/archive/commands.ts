import { createWriteStream } from 'node:fs'
import { operator } from '../audit/events.ts'
import { type Command, command, out, progress, UsageError, withStorage } from '../platform/command.ts'
import { chainVerificationOptions, verifyChains } from '../platform/hash-chain/verify-chains.ts'
import { openArchiveKeyProvider } from '../platform/keyring/open-provider.ts'
import { openSigningKey } from '../platform/keyring/signing-keys.ts'
import { exportCase } from './export.ts'
import { archiveChains, verifyArchiveChain } from './verify.ts'

function isoDate(value: string | undefined, name: string): Date | undefined {
  if (value === undefined) return undefined
  const date = new Date(value)
  if (Number.isNaN(date.getTime())) throw new UsageError(`${name} must be an ISO 8601 date`)
  return date
}

/** The compliance archive's evidence and its export for a case. */
export const archiveCommands: readonly Command[] = [
  command({
    name: 'archive verify',
    synopsis: '--keys JWKS [--tenant ID] [--witness FILE]',
    summary:
      'recompute the archive chains, their content hashes and signed checkpoints the\nsame way, trusting only the keys in JWKS (no archive key needed); exit status\n1 or 3 as for audit verify',
    options: chainVerificationOptions,
    async run(values, { config }) {
      await verifyChains(config(), 'archive', values, { chains: archiveChains, verify: verifyArchiveChain })
    },
  }),
  command({
    name: 'archive export',
    synopsis: '--tenant ID (--conversation ID | --customer ID) [--from ISO] [--to ISO] --out FILE',
    summary: 'export a case as a signed bundle (JSON lines, the last the signed manifest)',
    options: {
      tenant: { type: 'string' },
      conversation: { type: 'string' },
      customer: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      out: { type: 'string' },
    },
    async run(values, { config }) {
      const { tenant: tenantId, conversation, customer, out: file } = values
      if (!tenantId || !file || Boolean(conversation) === Boolean(customer)) {
        throw new UsageError('archive export needs --tenant, one of --conversation or --customer, and --out')
      }
      const scope = {
        conversationId: conversation,
        customerId: customer,
        from: isoDate(values.from, '--from'),
        to: isoDate(values.to, '--to'),
      }
      const loaded = config()
      const manifest = await withStorage(loaded, async ({ db, provider }) => {
        const archiveKek = await openArchiveKeyProvider(loaded, { create: false })
        const signer = await openSigningKey(db, provider, 'archive-checkpoint', tenantId)
        const stream = createWriteStream(file, { flags: 'wx', mode: 0o600 })
        try {
          return await exportCase(
            { db, archiveKek },
            signer,
            tenantId,
            scope,
            operator,
            (line) => new Promise<void>((resolve) => (stream.write(line) ? resolve() : stream.once('drain', resolve))),
            (done, total) => progress('export', done, total),
          )
        } finally {
          await new Promise((resolve) => stream.end(resolve))
        }
      })
      out({ file, records: manifest.records, checkpoint: manifest.checkpoint.treeSize })
    },
  }),
]
