import type { Logger } from '../logging.ts'
import { startPeriodicTask } from '../periodic-task.ts'

const CHAIN_INTERVAL_MS = 250

/** Runs a chainer pass on this node every quarter second; stopping links what is still pending. */
export function startChainTask(name: string, log: Logger, pass: () => Promise<unknown>) {
  const task = startPeriodicTask({ name, intervalMs: CHAIN_INTERVAL_MS, pass, log })
  return {
    flush: task.flush,
    async stop() {
      await task.stop()
      await task.flush()
    },
  }
}
