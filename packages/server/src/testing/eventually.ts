/**
 * Waits for something that happens asynchronously (the archive member reading from the bus, an SMPP link binding
 * again), reading it every 20 ms until `done` says so or the time is up. Gives the last value read either way: the
 * caller asserts on it, so a wait that times out fails with what was there.
 */
export async function eventually<T>(
  read: () => T | Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await read()
    if (done(value) || Date.now() > deadline) return value
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
