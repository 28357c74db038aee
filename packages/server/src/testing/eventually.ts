import { AssertionError } from 'node:assert'
import { inspect } from 'node:util'

/**
 * Waits for something that happens asynchronously (the archive member reading from the bus, an SMPP link binding
 * again), reading it every 20 ms until `done` says so, for up to 20 s by default (generous: CI shares two cores).
 * Gives the value that satisfied `done`; when the time is up it throws, showing the last value read, so a wait that
 * never ends fails the test instead of passing it quietly.
 */
export async function eventually<T>(
  read: () => T | Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await read()
    if (done(value)) return value
    if (Date.now() > deadline) {
      throw new AssertionError({
        message: `still not there after ${timeoutMs} ms; last read: ${inspect(value, { depth: 3 })}`,
        actual: value,
        operator: 'eventually',
      })
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
