import type { ServerContext } from '../platform/context.ts'
import { startChainTask } from '../platform/hash-chain/chain-task.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import { chainPendingEvents } from './chainer.ts'

/** Runs the audit chainer on this node every quarter second; stopping chains what is still pending. */
export function startAuditChainer(ctx: Pick<ServerContext, 'db' | 'config' | 'log'>, signer: SigningKey) {
  const policy = { everyRecords: ctx.config.auditCheckpointRecords, everySeconds: ctx.config.auditCheckpointSeconds }
  return startChainTask('audit chainer', ctx.log, () => chainPendingEvents(ctx.db, signer, policy))
}
