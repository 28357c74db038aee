/**
 * Where the SDK keeps MLS state on the device: group states (which hold the member's signature key), unused key
 * packages' private halves and reading positions. An interface, so an app can put it in IndexedDB, a file or the
 * platform keystore; `encryptedStore` wraps any of them so that nothing reaches it in clear.
 */
export interface SecureStore {
  get(key: string): Promise<Uint8Array | undefined>
  set(key: string, value: Uint8Array): Promise<void>
  delete(key: string): Promise<void>
}

/** Keeps everything in memory: for tests and for processes that rebuild their state (they re-join by welcome). */
export class MemoryStore implements SecureStore {
  readonly #values = new Map<string, Uint8Array>()

  async get(key: string) {
    return this.#values.get(key)
  }

  async set(key: string, value: Uint8Array) {
    this.#values.set(key, Uint8Array.from(value))
  }

  async delete(key: string) {
    this.#values.delete(key)
  }

  /** Every stored value, to prove in tests what an attacker reading the store would see. */
  values(): Uint8Array[] {
    return [...this.#values.values()]
  }
}

const IV_LENGTH = 12

/**
 * Encrypts every value with AES-256-GCM under `key` before it reaches `inner`, binding each value to its name (a
 * value moved to another name does not decrypt). Make the key with `generateStoreKey`: non-extractable, so script
 * running in the page later cannot export it, only use it.
 */
export function encryptedStore(inner: SecureStore, key: CryptoKey): SecureStore {
  const aad = (name: string) => new TextEncoder().encode(`strongroom:store:${name}`)
  return {
    async get(name) {
      const sealed = await inner.get(name)
      if (!sealed) return undefined
      const plaintext = await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: new Uint8Array(sealed.subarray(0, IV_LENGTH)), additionalData: aad(name) },
        key,
        new Uint8Array(sealed.subarray(IV_LENGTH)),
      )
      return new Uint8Array(plaintext)
    },
    async set(name, value) {
      const iv = crypto.getRandomValues(new Uint8Array(IV_LENGTH))
      const ciphertext = await crypto.subtle.encrypt(
        { name: 'AES-GCM', iv, additionalData: aad(name) },
        key,
        Uint8Array.from(value),
      )
      const sealed = new Uint8Array(IV_LENGTH + ciphertext.byteLength)
      sealed.set(iv)
      sealed.set(new Uint8Array(ciphertext), IV_LENGTH)
      await inner.set(name, sealed)
    },
    delete: (name) => inner.delete(name),
  }
}

/** A non-extractable AES-256-GCM key for `encryptedStore`. */
export function generateStoreKey(): Promise<CryptoKey> {
  return crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt'])
}
