import { type Command, command } from '../platform/command.ts'
import { chainVerificationOptions, verifyChains } from '../platform/hash-chain/verify-chains.ts'
import { auditChains, verifyAuditChain } from './verify.ts'

/** Evidence that the audit log was not rewritten. */
export const auditCommands: readonly Command[] = [
  command({
    name: 'audit verify',
    synopsis: '--keys JWKS [--tenant ID] [--witness FILE]',
    summary:
      'recompute the audit chains and their signed checkpoints, trusting only the\nkeys in JWKS and checking every checkpoint the witness file holds\n(STRONGROOM_WITNESS_FILE by default); name the first record that fails (exit\nstatus 1), or the records after the newest checkpoint, unsealed (exit status 3)',
    options: chainVerificationOptions,
    async run(values, { config }) {
      await verifyChains(config(), 'audit', values, { chains: auditChains, verify: verifyAuditChain })
    },
  }),
]
