import type { Logger } from '../logging.ts'
import { startPeriodicTask } from '../periodic-task.ts'

const CHAIN_INTERVAL_MS = 250

/**
 * Runs a chainer pass on this node every quarter second. Stopping runs a last pass that links what is still pending
 * and seals it (`seal`: a checkpoint over every chain's newest records, however few), so a stopped deployment
 * verifies with no unsealed tail.
 */
export function startChainTask(name: string, log: Logger, pass: (seal: boolean) => Promise<unknown>) {
  const task = startPeriodicTask({ name, intervalMs: CHAIN_INTERVAL_MS, pass: () => pass(false), log })
  return {
    flush: task.flush,
    async stop() {
      await task.stop()
      await pass(true).catch((error) => log.warn({ err: error, task: name }, 'last chainer pass failed'))
    },
  }
}
