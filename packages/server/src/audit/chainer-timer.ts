import type { ServerContext } from '../platform/context.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import { chainPendingEvents } from './chainer.ts'

const CHAIN_INTERVAL_MS = 250

/** Runs the chainer on this node every quarter second, one pass at a time. */
export function startAuditChainer(ctx: Pick<ServerContext, 'db' | 'config' | 'log'>, signer: SigningKey) {
  const policy = {
    everyRecords: ctx.config.auditCheckpointRecords,
    everySeconds: ctx.config.auditCheckpointSeconds,
  }
  let current: Promise<void> | undefined
  const pass = (): Promise<void> => {
    current ??= chainPendingEvents(ctx.db, signer, policy)
      .then(
        () => {},
        (error) => ctx.log.warn({ err: error }, 'audit chaining failed'),
      )
      .finally(() => {
        current = undefined
      })
    return current
  }
  const timer = setInterval(pass, CHAIN_INTERVAL_MS)
  timer.unref()
  return {
    /** Waits for the pass in progress, then chains whatever is still pending. */
    async flush() {
      await current
      await pass()
    },
    async stop() {
      clearInterval(timer)
      await this.flush()
    },
  }
}
