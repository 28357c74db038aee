import { type FileHandle, open, readFile, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import { encryptedStore, type SecureStore } from './secure-store.ts'

const FORMAT = 'strongroom-store/v1'
/** setTimeout's longest delay; a later expiry is looked at again then. */
const MAX_TIMER_MS = 2 ** 31 - 1

interface StoredEntry {
  /** base64 of the value as given (sealed, under `encryptedStore`) */
  v: string
  /** expiry, ms since the epoch */
  x?: number
}

interface StoreFile {
  format: typeof FORMAT
  entries: Record<string, StoredEntry>
}

export interface FileStoreOptions {
  /** The clock, for tests; `Date.now` by default. */
  now?: () => number
}

/**
 * A SecureStore in one file, for Node apps. Every change rewrites the file atomically: the new state goes to a
 * temporary file beside it, is flushed to disk, and replaces the old one by rename (then the directory is flushed), so
 * a crash or a full disk at any moment leaves either the old state or the new one, never a torn file. Changes made
 * while a write is in flight share the next write. Expired values are hidden at once, erased from the file when the
 * store opens (however long the app was closed or offline) and again at each expiry while it is open.
 *
 * It keeps values as given: wrap it with `encryptedStore` (`openFileSecureStore` does), so that the file holds only
 * ciphertext. Names and expiry times stay in clear. One process at a time per file.
 */
export class FileStore implements SecureStore {
  readonly #path: string
  readonly #temporary: string
  readonly #now: () => number
  readonly #values = new Map<string, Uint8Array>()
  readonly #expiries = new Map<string, number>()
  #writing: Promise<void> = Promise.resolve()
  #pending: Promise<void> | undefined
  #timer: ReturnType<typeof setTimeout> | undefined

  private constructor(file: string, now: () => number) {
    this.#path = file
    this.#temporary = `${file}.tmp`
    this.#now = now
  }

  /** Opens (or starts) the store in `file`, dropping a temporary file a crash left and erasing what expired. */
  static async open(file: string, options: FileStoreOptions = {}): Promise<FileStore> {
    const store = new FileStore(path.resolve(file), options.now ?? Date.now)
    // A temporary file is an unfinished write: the state before it is the one in the file itself.
    await rm(store.#temporary, { force: true })
    let text: string | undefined
    try {
      text = await readFile(store.#path, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
    if (text !== undefined) {
      const parsed = JSON.parse(text) as StoreFile
      if (parsed.format !== FORMAT || typeof parsed.entries !== 'object') {
        throw new Error(`${store.#path} is not a Strongroom store`)
      }
      for (const [name, entry] of Object.entries(parsed.entries)) {
        store.#values.set(name, Buffer.from(entry.v, 'base64'))
        if (entry.x !== undefined) store.#expiries.set(name, entry.x)
      }
    }
    await store.purgeExpired(new Date(store.#now()))
    return store
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    const expiresAt = this.#expiries.get(name)
    if (expiresAt !== undefined && expiresAt <= this.#now()) return undefined
    const value = this.#values.get(name)
    return value && Uint8Array.from(value)
  }

  async set(name: string, value: Uint8Array, options: { expiresAt?: Date } = {}): Promise<void> {
    this.#values.set(name, Uint8Array.from(value))
    if (options.expiresAt) this.#expiries.set(name, options.expiresAt.getTime())
    else this.#expiries.delete(name)
    this.#scheduleExpiry()
    await this.#persist()
  }

  async delete(name: string): Promise<void> {
    if (!this.#values.has(name)) return
    this.#forget(name)
    await this.#persist()
  }

  async purgeExpired(now: Date): Promise<number> {
    let purged = 0
    for (const [name, expiresAt] of this.#expiries) {
      if (expiresAt > now.getTime()) continue
      this.#forget(name)
      purged++
    }
    this.#scheduleExpiry()
    if (purged > 0) await this.#persist()
    return purged
  }

  /**
   * Erases everything: the file is overwritten with zeros and removed. On flash storage and journaling file systems
   * the old blocks may survive the overwrite; what they hold is ciphertext under a key the app must destroy too.
   */
  async wipe(): Promise<void> {
    for (const name of [...this.#values.keys()]) this.#forget(name)
    this.close()
    await this.#writing
    let file: FileHandle | undefined
    try {
      file = await open(this.#path, 'r+')
      const { size } = await file.stat()
      await file.write(Buffer.alloc(size), 0, size, 0)
      await file.sync()
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    } finally {
      await file?.close()
    }
    await rm(this.#path, { force: true })
    await rm(this.#temporary, { force: true })
  }

  /** Stops the expiry timer (the process may exit without it); the store still works, without erasing at expiry. */
  close(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #forget(name: string): void {
    this.#values.get(name)?.fill(0)
    this.#values.delete(name)
    this.#expiries.delete(name)
  }

  /** Erases from the file at the next expiry, while the store is open; a timer that does not keep the process up. */
  #scheduleExpiry(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#expiries.size === 0) return
    let next = Number.POSITIVE_INFINITY
    for (const expiresAt of this.#expiries.values()) next = Math.min(next, expiresAt)
    const delay = Math.min(Math.max(next - this.#now(), 0), MAX_TIMER_MS)
    this.#timer = setTimeout(() => void this.purgeExpired(new Date(this.#now())).catch(() => undefined), delay)
    this.#timer.unref?.()
  }

  /** Writes the current state; resolves once a write that includes every change made so far is on disk. */
  #persist(): Promise<void> {
    this.#pending ??= this.#writing.then(() => {
      this.#pending = undefined
      return this.#writeFile()
    })
    const write = this.#pending
    this.#writing = write.catch(() => undefined)
    return write
  }

  async #writeFile(): Promise<void> {
    const entries: Record<string, StoredEntry> = {}
    for (const [name, value] of this.#values) {
      const expiresAt = this.#expiries.get(name)
      entries[name] = { v: Buffer.from(value).toString('base64'), ...(expiresAt === undefined ? {} : { x: expiresAt }) }
    }
    const text = JSON.stringify({ format: FORMAT, entries } satisfies StoreFile)
    const temporary = await open(this.#temporary, 'w', 0o600)
    try {
      await temporary.writeFile(text, 'utf8')
      await temporary.sync()
    } finally {
      await temporary.close()
    }
    await rename(this.#temporary, this.#path)
    await syncDirectory(path.dirname(this.#path))
  }
}

/** Makes a rename durable: on POSIX systems the directory entry is flushed separately from the file. */
async function syncDirectory(directory: string): Promise<void> {
  if (process.platform === 'win32') return
  const handle = await open(directory, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * The Node app's SecureStore: a `FileStore` with every value sealed by `encryptedStore` under the key the app supplies
 * (keep it in the platform's keychain, not beside the file; `importStoreKey` turns 32 bytes into one).
 *
 * @example
 * const store = await openFileSecureStore('/var/lib/app/strongroom.store', await importStoreKey(keyFromKeychain))
 * const secure = await SecureMessaging.open(client, { provider: nodeCryptoProvider, store, keepTexts: true })
 */
export async function openFileSecureStore(
  file: string,
  storeKey: CryptoKey,
  options: FileStoreOptions = {},
): Promise<SecureStore> {
  return encryptedStore(await FileStore.open(file, options), storeKey)
}
