import type { ServerContext } from '../platform/context.ts'
import { startChainTask } from '../platform/hash-chain/chain-task.ts'
import { openWitness, witnessCheckpoints } from '../platform/hash-chain/witness.ts'
import type { TenantSigningKeys } from '../platform/keyring/signing-keys.ts'
import { chainPendingEvents } from './chainer.ts'

/**
 * Runs the audit chainer on this node every quarter second, then sends new checkpoints to the witness when one is
 * configured; stopping chains what is still pending.
 */
export function startAuditChainer(ctx: Pick<ServerContext, 'db' | 'config' | 'log'>, signers: TenantSigningKeys) {
  const policy = { everyRecords: ctx.config.auditCheckpointRecords, everySeconds: ctx.config.auditCheckpointSeconds }
  const witness = openWitness(ctx.config)
  return startChainTask('audit chainer', ctx.log, async (seal) => {
    await chainPendingEvents(ctx.db, signers, seal ? { ...policy, everySeconds: 0 } : policy)
    if (witness?.due()) await witnessCheckpoints(ctx.db, 'audit', witness)
  })
}
