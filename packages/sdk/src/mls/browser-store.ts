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
  return done(request)
}

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
    const value = await done(this.#db.transaction(VALUES).objectStore(VALUES).get(key))
    return value instanceof Uint8Array ? value : undefined
  }

  async set(key: string, value: Uint8Array): Promise<void> {
    await done(this.#db.transaction(VALUES, 'readwrite').objectStore(VALUES).put(Uint8Array.from(value), key))
  }

  async delete(key: string): Promise<void> {
    await done(this.#db.transaction(VALUES, 'readwrite').objectStore(VALUES).delete(key))
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
