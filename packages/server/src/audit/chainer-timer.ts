import type { ServerContext } from '../platform/context.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import { startPeriodicTask } from '../platform/periodic-task.ts'
import { chainPendingEvents } from './chainer.ts'

const CHAIN_INTERVAL_MS = 250

/** Runs the chainer on this node every quarter second; stopping chains what is still pending. */
export function startAuditChainer(ctx: Pick<ServerContext, 'db' | 'config' | 'log'>, signer: SigningKey) {
  const policy = { everyRecords: ctx.config.auditCheckpointRecords, everySeconds: ctx.config.auditCheckpointSeconds }
  const task = startPeriodicTask({
    name: 'audit chainer',
    intervalMs: CHAIN_INTERVAL_MS,
    pass: () => chainPendingEvents(ctx.db, signer, policy),
    log: ctx.log,
  })
  return {
    flush: task.flush,
    async stop() {
      await task.stop()
      await task.flush()
    },
  }
}
