/** base64 for bytes, in browsers and Node alike. */
export function bytesToBase64(bytes: Uint8Array): string {
  let binary = ''
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  }
  return btoa(binary)
}

export function base64ToBytes(base64: string): Uint8Array {
  const binary = atob(base64)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

export function randomId(): string {
  return crypto.randomUUID()
}

/**
 * The platform's fetch, callable as a method: browsers refuse `window.fetch` called with another `this` ("Illegal
 * invocation"), which is what `this.#fetch(…)` on a stored reference does.
 */
export const platformFetch: typeof fetch = (input, init) => globalThis.fetch(input, init)
