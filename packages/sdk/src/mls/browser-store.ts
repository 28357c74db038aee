import { defaultCryptoProvider } from 'ts-mls'
import { encryptedStore, generateStoreKey, type SecureStore } from './secure-store.ts'

/** ts-mls's provider on WebCrypto (and noble where WebCrypto lacks a curve): the one for browsers. */
export const browserCryptoProvider = defaultCryptoProvider

const VALUES = 'values'
const KEYS = 'keys'
const STORE_KEY = 'store-key'

function done<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result)
    request.onerror = () => reject(request.error)
  })
}

function openDatabase(name: string): Promise<IDBDatabase> {
  const request = indexedDB.open(name, 1)
  request.onupgradeneeded = () => {
    request.result.createObjectStore(VALUES)
    request.result.createObjectStore(KEYS)
  }
  return done(request).then((db) => {
    // Another tab deleting the database (a remote wipe) must not wait for this one to be closed by hand.
    db.onversionchange = () => db.close()
    return db
  })
}

/** A value with an expiry, as stored; a value without one is stored as its bytes alone. */
interface Expiring {
  value: Uint8Array
  expiresAt: number
}

const isExpiring = (stored: unknown): stored is Expiring =>
  typeof stored === 'object' && stored !== null && (stored as Expiring).value instanceof Uint8Array

/** A SecureStore in one IndexedDB database. Wrap it with `encryptedStore`; `openBrowserSecureStore` does. */
export class IndexedDbStore implements SecureStore {
  readonly #db: IDBDatabase

  constructor(db: IDBDatabase) {
    this.#db = db
  }

  /** Deletes the whole database, the store key with it. */
  async wipe(): Promise<void> {
    this.#db.close()
    await done(indexedDB.deleteDatabase(this.#db.name))
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const stored: unknown = await done(this.#db.transaction(VALUES).objectStore(VALUES).get(key))
    if (stored instanceof Uint8Array) return stored
    return isExpiring(stored) && stored.expiresAt > Date.now() ? stored.value : undefined
  }

  async set(key: string, value: Uint8Array, options: { expiresAt?: Date } = {}): Promise<void> {
    const copy = Uint8Array.from(value)
    const stored: Uint8Array | Expiring = options.expiresAt
      ? { value: copy, expiresAt: options.expiresAt.getTime() }
      : copy
    await done(this.#db.transaction(VALUES, 'readwrite').objectStore(VALUES).put(stored, key))
  }

  async delete(key: string): Promise<void> {
    await done(this.#db.transaction(VALUES, 'readwrite').objectStore(VALUES).delete(key))
  }

  async purgeExpired(now: Date): Promise<number> {
    const cursor = this.#db.transaction(VALUES, 'readwrite').objectStore(VALUES).openCursor()
    let purged = 0
    return new Promise((resolve, reject) => {
      cursor.onerror = () => reject(cursor.error)
      cursor.onsuccess = () => {
        const at = cursor.result
        if (!at) return resolve(purged)
        if (isExpiring(at.value) && at.value.expiresAt <= now.getTime()) {
          at.delete()
          purged++
        }
        at.continue()
      }
    })
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
