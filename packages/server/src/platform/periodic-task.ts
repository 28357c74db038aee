import type { Logger } from './logging.ts'

/**
 * Runs `pass` every `intervalMs` on this node, never two at once: a pass still running when the next is due is not
 * doubled. `flush` waits for the pass in progress and runs one more; `stop` ends the schedule and waits.
 */
export function startPeriodicTask(options: {
  name: string
  intervalMs: number
  pass: () => Promise<unknown>
  log: Logger
}) {
  let current: Promise<void> | undefined
  const run = (): Promise<void> => {
    current ??= options
      .pass()
      .then(
        () => {},
        (error) => options.log.warn({ err: error, task: options.name }, 'periodic task failed'),
      )
      .finally(() => {
        current = undefined
      })
    return current
  }
  const timer = setInterval(run, options.intervalMs)
  timer.unref()
  return {
    async flush() {
      await current
      await run()
    },
    async stop() {
      clearInterval(timer)
      await current
    },
  }
}
