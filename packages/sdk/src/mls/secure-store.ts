/**
 * Where the SDK keeps MLS state on the device: group states (which hold the member's signature key), unused key
 * packages' private halves and reading positions. An interface, so an app can put it in IndexedDB, a file or the
 * platform keystore; `encryptedStore` wraps any of them so that nothing reaches it in clear.
 */
export interface SecureStore {
  get(key: string): Promise<Uint8Array | undefined>
  /** With `expiresAt` (a message's), the value is gone from then on, and `purgeExpired` erases it even offline. */
  set(key: string, value: Uint8Array, options?: { expiresAt?: Date }): Promise<void>
  delete(key: string): Promise<void>
  /** Erases everything (a remote wipe); afterwards the store holds nothing readable. */
  wipe?(): Promise<void>
  /** Erases the values whose expiry is at or before `now`; returns how many. */
  purgeExpired?(now: Date): Promise<number>
  /**
   * Stores all the values, atomically, unless the first name already holds one (then stores none and says false). For
   * a store that several processes share (the archive member's workers): two making a member identity at once keep
   * one. A store only one process writes to need not have it.
   */
  setAllIfAbsent?(values: [name: string, value: Uint8Array][]): Promise<boolean>
  /**
   * Runs `operation` while no other user of the store (another tab of the same browser, another member instance in
   * the process) runs one under the same name, and returns what it returns. For a store that several instances of one
   * member share: each operation on a group then starts from the state the previous one stored, whoever made it, so
   * two instances never encrypt with the same key of the same leaf (a fork the other members cannot read). A store
   * that one instance alone uses need not have it.
   */
  exclusive?<T>(name: string, operation: () => Promise<T>): Promise<T>
}

/** Runs operations one after another per name, within the process: `exclusive` for in-process stores. */
export function inProcessExclusive(): NonNullable<SecureStore['exclusive']> {
  const queues = new Map<string, Promise<unknown>>()
  return <T>(name: string, operation: () => Promise<T>): Promise<T> => {
    const result = (queues.get(name) ?? Promise.resolve()).then(operation, operation)
    const settled = result.catch(() => undefined)
    queues.set(name, settled)
    void settled.then(() => {
      if (queues.get(name) === settled) queues.delete(name)
    })
    return result
  }
}

/** Keeps everything in memory: for tests and for processes that rebuild their state (they re-join by welcome). */
export class MemoryStore implements SecureStore {
  readonly #values = new Map<string, Uint8Array>()
  readonly #expiries = new Map<string, number>()
  /** Several member instances in one process may share a MemoryStore (tests of several tabs do). */
  readonly exclusive = inProcessExclusive()

  async get(key: string) {
    const expiresAt = this.#expiries.get(key)
    if (expiresAt !== undefined && expiresAt <= Date.now()) return undefined
    return this.#values.get(key)
  }

  async set(key: string, value: Uint8Array, options: { expiresAt?: Date } = {}) {
    this.#values.set(key, Uint8Array.from(value))
    if (options.expiresAt) this.#expiries.set(key, options.expiresAt.getTime())
    else this.#expiries.delete(key)
  }

  async delete(key: string) {
    this.#values.get(key)?.fill(0)
    this.#values.delete(key)
    this.#expiries.delete(key)
  }

  async wipe() {
    for (const value of this.#values.values()) value.fill(0)
    this.#values.clear()
    this.#expiries.clear()
  }

  async purgeExpired(now: Date) {
    let purged = 0
    for (const [key, expiresAt] of this.#expiries) {
      if (expiresAt > now.getTime()) continue
      await this.delete(key)
      purged++
    }
    return purged
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
export function encryptedStore(inner: SecureStore, storeKey: CryptoKey): SecureStore {
  const aad = (name: string) => new TextEncoder().encode(`strongroom:store:${name}`)
  // Dropped by wipe(): what the inner store still holds then cannot be decrypted through this store any more.
  let current: CryptoKey | undefined = storeKey
  const keyOrFail = () => {
    if (!current) throw new Error('the store was wiped')
    return current
  }
  return {
    async get(name) {
      const key = keyOrFail()
      const sealed = await inner.get(name)
      if (!sealed) return undefined
      const plaintext = await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: new Uint8Array(sealed.subarray(0, IV_LENGTH)), additionalData: aad(name) },
        key,
        new Uint8Array(sealed.subarray(IV_LENGTH)),
      )
      return new Uint8Array(plaintext)
    },
    async set(name, value, options) {
      const key = keyOrFail()
      const iv = crypto.getRandomValues(new Uint8Array(IV_LENGTH))
      const ciphertext = await crypto.subtle.encrypt(
        { name: 'AES-GCM', iv, additionalData: aad(name) },
        key,
        Uint8Array.from(value),
      )
      const sealed = new Uint8Array(IV_LENGTH + ciphertext.byteLength)
      sealed.set(iv)
      sealed.set(new Uint8Array(ciphertext), IV_LENGTH)
      await inner.set(name, sealed, options)
    },
    delete: (name) => inner.delete(name),
    async wipe() {
      current = undefined
      await inner.wipe?.()
    },
    purgeExpired: async (now) => (inner.purgeExpired ? inner.purgeExpired(now) : 0),
    ...(inner.exclusive ? { exclusive: inner.exclusive.bind(inner) } : {}),
  }
}

/** A non-extractable AES-256-GCM key for `encryptedStore`. */
export function generateStoreKey(): Promise<CryptoKey> {
  return crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt'])
}

/**
 * Turns 32 bytes the app keeps elsewhere (the platform keychain, a secret manager) into a non-extractable AES-256-GCM
 * key for `encryptedStore`, so that a store on disk outlives the process that made it.
 */
export function importStoreKey(raw: Uint8Array): Promise<CryptoKey> {
  if (raw.length !== 32) throw new TypeError('a store key is 32 bytes')
  return crypto.subtle.importKey('raw', Uint8Array.from(raw), { name: 'AES-GCM' }, false, ['encrypt', 'decrypt'])
}
