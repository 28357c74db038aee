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

  /**
   * One holder at a time across every tab and worker of the origin (the Web Locks API), per database and name: the
   * tabs of a browser share one member state, and take turns moving it on.
   */
  async exclusive<T>(name: string, operation: () => Promise<T>): Promise<T> {
    return await navigator.locks.request(`${this.#db.name}/${name}`, operation)
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

/** CryptoKeys (and pairs of them) kept as they are, non-extractable ones included, beside the store's values. */
export interface BrowserKeyShelf {
  get<T extends CryptoKey | CryptoKeyPair>(name: string): Promise<T | undefined>
  /** Keeps the key unless one is already kept under the name; returns the one kept. */
  keep<T extends CryptoKey | CryptoKeyPair>(name: string, key: T): Promise<T>
  put(name: string, key: CryptoKey | CryptoKeyPair): Promise<void>
}

/** One IndexedDB database: sealed values (`store`) and the keys beside them (`keys`); `store.wipe()` deletes both. */
export async function openBrowserDatabase(name: string): Promise<{ store: SecureStore; keys: BrowserKeyShelf }> {
  const db = await openDatabase(name)
  const keys: BrowserKeyShelf = {
    get: async <T extends CryptoKey | CryptoKeyPair>(key: string) =>
      (await done(db.transaction(KEYS).objectStore(KEYS).get(key))) as T | undefined,
    async keep(key, value) {
      // Two tabs keeping a key at once: `add` lets only the first in, and both then use it.
      await done(db.transaction(KEYS, 'readwrite').objectStore(KEYS).add(value, key)).catch(() => undefined)
      return (await keys.get(key)) as typeof value
    },
    async put(key, value) {
      await done(db.transaction(KEYS, 'readwrite').objectStore(KEYS).put(value, key))
    },
  }
  const storeKey = (await keys.get<CryptoKey>(STORE_KEY)) ?? (await keys.keep(STORE_KEY, await generateStoreKey()))
  return { store: encryptedStore(new IndexedDbStore(db), storeKey), keys }
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
  return (await openBrowserDatabase(name)).store
}

/** Erases a browser store and its key (sign-out on a shared machine, a revoked device). */
export function deleteBrowserSecureStore(name: string): Promise<void> {
  return done(indexedDB.deleteDatabase(name)).then(() => undefined)
}
