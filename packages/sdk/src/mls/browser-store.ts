import { defaultCryptoProvider } from 'ts-mls'
import { encryptedStore, generateStoreKey, type SecureStore } from './secure-store.ts'

/** ts-mls's provider on WebCrypto (and noble where WebCrypto lacks a curve): the one for browsers. */
export const browserCryptoProvider = defaultCryptoProvider

const VALUES = 'values'
const KEYS = 'keys'
/** Each value's expiry (ms since the epoch), by the value's name. Since version 2 of the database. */
const EXPIRIES = 'expiries'
const STORE_KEY = 'store-key'
const VERSION = 2

function done<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result)
    request.onerror = () => reject(request.error)
  })
}

function openDatabase(name: string): Promise<IDBDatabase> {
  const request = indexedDB.open(name, VERSION)
  request.onupgradeneeded = () => {
    // A database of version 1 has values and keys already; expiries come with version 2.
    for (const store of [VALUES, KEYS, EXPIRIES]) {
      if (!request.result.objectStoreNames.contains(store)) request.result.createObjectStore(store)
    }
  }
  return done(request)
}

/** Resolves when a transaction has committed (its requests alone do not say that it did). */
function committed(transaction: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve()
    transaction.onerror = () => reject(transaction.error)
    transaction.onabort = () => reject(transaction.error)
  })
}

/**
 * A SecureStore in one IndexedDB database. Wrap it with `encryptedStore`; `openBrowserSecureStore` does. A value with
 * an expiry is hidden from then on and erased by `purgeExpired`, which needs no network.
 */
export class IndexedDbStore implements SecureStore {
  readonly #db: IDBDatabase
  readonly #now: () => number

  constructor(db: IDBDatabase, options: { now?: () => number } = {}) {
    this.#db = db
    this.#now = options.now ?? Date.now
  }

  /** Opens (or makes) the database `name`, without a store key: for tests and for apps that seal values themselves. */
  static async open(name: string, options: { now?: () => number } = {}): Promise<IndexedDbStore> {
    return new IndexedDbStore(await openDatabase(name), options)
  }

  /** Deletes the whole database, the store key with it. */
  async wipe(): Promise<void> {
    this.#db.close()
    await done(indexedDB.deleteDatabase(this.#db.name))
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const transaction = this.#db.transaction([VALUES, EXPIRIES])
    const [value, expiresAt] = await Promise.all([
      done(transaction.objectStore(VALUES).get(key)),
      done(transaction.objectStore(EXPIRIES).get(key)),
    ])
    if (typeof expiresAt === 'number' && expiresAt <= this.#now()) return undefined
    return value instanceof Uint8Array ? value : undefined
  }

  async set(key: string, value: Uint8Array, options: { expiresAt?: Date } = {}): Promise<void> {
    const transaction = this.#db.transaction([VALUES, EXPIRIES], 'readwrite')
    transaction.objectStore(VALUES).put(Uint8Array.from(value), key)
    if (options.expiresAt) transaction.objectStore(EXPIRIES).put(options.expiresAt.getTime(), key)
    else transaction.objectStore(EXPIRIES).delete(key)
    await committed(transaction)
  }

  async delete(key: string): Promise<void> {
    const transaction = this.#db.transaction([VALUES, EXPIRIES], 'readwrite')
    transaction.objectStore(VALUES).delete(key)
    transaction.objectStore(EXPIRIES).delete(key)
    await committed(transaction)
  }

  async purgeExpired(now: Date): Promise<number> {
    const transaction = this.#db.transaction([VALUES, EXPIRIES], 'readwrite')
    const values = transaction.objectStore(VALUES)
    let purged = 0
    const cursor = transaction.objectStore(EXPIRIES).openCursor()
    cursor.onsuccess = () => {
      const at = cursor.result
      if (!at) return
      if (typeof at.value === 'number' && at.value <= now.getTime()) {
        values.delete(at.key)
        at.delete()
        purged++
      }
      at.continue()
    }
    await committed(transaction)
    return purged
  }
}

/**
 * The browser's SecureStore: values in IndexedDB, each sealed with AES-256-GCM under a key made non-extractable by
 * WebCrypto and kept (as a CryptoKey, never as bytes) in the same database. Script in the page can use the key while
 * it runs but never read it out, and a copy of the database's files is ciphertext without the browser's key handle.
 *
 * @example
 * const store = await openBrowserSecureStore(`strongroom-mls:${tenantId}:${staffId}`)
 * const secure = await SecureMessaging.open(client, { provider: browserCryptoProvider, store })
 */
export async function openBrowserSecureStore(name: string): Promise<SecureStore> {
  const db = await openDatabase(name)
  let key = (await done(db.transaction(KEYS).objectStore(KEYS).get(STORE_KEY))) as CryptoKey | undefined
  if (!key) {
    const fresh = await generateStoreKey()
    // Two tabs opening at once: `add` lets only the first key in, and both then use it.
    await done(db.transaction(KEYS, 'readwrite').objectStore(KEYS).add(fresh, STORE_KEY)).catch(() => undefined)
    key = (await done(db.transaction(KEYS).objectStore(KEYS).get(STORE_KEY))) as CryptoKey
  }
  return encryptedStore(new IndexedDbStore(db), key)
}

/** Erases a browser store and its key (sign-out on a shared machine, a revoked device). */
export function deleteBrowserSecureStore(name: string): Promise<void> {
  return done(indexedDB.deleteDatabase(name)).then(() => undefined)
}
