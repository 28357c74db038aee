import { out, progress, UsageError, withStorage } from '../command.ts'
import type { Config } from '../config.ts'
import type { Db } from '../db/database.ts'
import { readTrustedKeys, trustedKeysFor } from './trusted-keys.ts'
import type { ChainTrust, ChainVerification } from './walker.ts'

/** The options with which a chain is verified against keys and a witness from outside the database. */
export const chainVerificationOptions = {
  tenant: { type: 'string' },
  keys: { type: 'string' },
  witness: { type: 'string' },
} as const

/**
 * Verifies one tenant's chain or every chain of a kind (audit or archive) against keys and a witness from outside the
 * database, printing the results and a progress bar. Names the first failing record on stderr and sets exit status 1;
 * otherwise names records no checkpoint covers yet and sets exit status 3.
 */
export async function verifyChains(
  config: Config,
  label: 'audit' | 'archive',
  options: { tenant?: string | undefined; keys?: string | undefined; witness?: string | undefined },
  how: {
    chains: (db: Db) => Promise<string[]>
    verify: (
      db: Db,
      tenantId: string,
      trust: ChainTrust,
      onProgress: (done: number, total: number) => void,
    ) => Promise<ChainVerification>
  },
): Promise<void> {
  if (!options.keys) {
    throw new UsageError(
      `${label} verify needs --keys JWKS (from \`strongroom keys export-public\`): keys read from the database it verifies prove nothing`,
    )
  }
  const trusted = readTrustedKeys(options.keys)
  const witnessFile = options.witness ?? config.witnessFile
  const results = await withStorage(config, async ({ db }) => {
    const verified = []
    for (const chain of options.tenant ? [options.tenant] : await how.chains(db)) {
      // Each bank's chain against that bank's keys only: another bank's genuine key proves nothing here.
      const trust = { keys: trustedKeysFor(trusted, chain), witnessFile }
      verified.push(await how.verify(db, chain, trust, (done, total) => progress(`${label} ${chain}`, done, total)))
    }
    return verified
  })
  out(results)
  const failed = results.find((r) => !r.ok)
  if (failed?.failure) {
    process.stderr.write(
      `strongroom: ${label} chain ${failed.tenantId} fails at record ${failed.failure.seq}: ${failed.failure.reason}\n`,
    )
    process.exitCode = 1
    return
  }
  const unsealed = results.find((r) => r.unsealed > 0)
  if (unsealed) {
    const first = unsealed.records - unsealed.unsealed + 1
    process.stderr.write(
      `strongroom: ${label} chain ${unsealed.tenantId} has ${unsealed.unsealed} unsealed records from record ${first}: no checkpoint covers them yet\n`,
    )
    process.exitCode = 3
  }
}
