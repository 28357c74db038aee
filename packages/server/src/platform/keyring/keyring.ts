import { createHmac, randomBytes } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Bus } from '../bus/bus.ts'
import type { Database } from '../db/schema.ts'
import { openAesGcm, sealAesGcm } from './aes-gcm.ts'
import type { KeyProvider } from './key-provider.ts'

/** Where an encrypted value belongs: the associated data binds it there, so a copy elsewhere fails to decrypt. */
export interface FieldRef {
  table: string
  column: string
  rowId: string
}

type Purpose = 'data' | 'index'

/** Published when a tenant gets a new data key, so that every node encrypts with it from then on, without restart. */
export const DATA_KEY_ROTATED_SUBJECT_PREFIX = 'strongroom.keys.data-key-rotated.'

const FORMAT_VERSION = 1
const HEADER_BYTES = 5

/** A decryption that failed, for whatever reason; the message says nothing more on purpose. */
export class KeyringError extends Error {
  readonly code = 'ERR_DECRYPT_FAILED'
  constructor() {
    super('decryption failed')
    this.name = 'KeyringError'
  }
}

/**
 * Envelope encryption for columns at rest. Each tenant has data keys (versioned; the newest encrypts) and a
 * blind-index key, all wrapped by the key provider's KEK and stored in `tenant_keys`. A ciphertext is
 * `format(1) | data-key version(4) | iv | ciphertext | tag`, sealed with AES-256-GCM under associated data naming
 * tenant, table, column and row.
 */
export class Keyring {
  readonly #db: Kysely<Database>
  readonly #provider: KeyProvider
  /** Unwrapped keys by tenant, purpose and version: the hot path does no database read and no unwrap. */
  readonly #cache = new Map<string, Promise<Buffer>>()
  readonly #newest = new Map<string, number>()

  constructor(db: Kysely<Database>, provider: KeyProvider) {
    this.#db = db
    this.#provider = provider
  }

  /** Makes a new tenant's first data key and its blind-index key, in the caller's transaction. */
  async createTenantKeys(db: Kysely<Database>, tenantId: string): Promise<void> {
    for (const purpose of ['data', 'index'] as const) await this.#insertKey(db, tenantId, purpose, 1)
  }

  /**
   * Every node listens for data key rotations: on one, it forgets which version is the tenant's newest and reads it
   * again from the database on its next encryption (the event says which tenant; the database says which key).
   */
  followRotations(bus: Bus): () => void {
    return bus.subscribe(`${DATA_KEY_ROTATED_SUBJECT_PREFIX}*`, (subject) => {
      this.#newest.delete(subject.slice(DATA_KEY_ROTATED_SUBJECT_PREFIX.length))
    })
  }

  /** Tells every node (this one included) that a tenant has a new data key. */
  static announceRotation(bus: Bus, tenantId: string): void {
    bus.publish(`${DATA_KEY_ROTATED_SUBJECT_PREFIX}${tenantId}`, new Uint8Array())
  }

  /** The tenant's newest data key version as the database holds it now (not this node's cached view). */
  async currentDataKeyVersion(tenantId: string, db: Kysely<Database> = this.#db): Promise<number> {
    const row = await db
      .selectFrom('tenant_keys')
      .select(({ fn }) => fn.max('version').as('version'))
      .where('tenant_id', '=', tenantId)
      .where('purpose', '=', 'data')
      .executeTakeFirst()
    if (row?.version === undefined || row.version === null) throw new Error(`tenant ${tenantId} has no data key`)
    return Number(row.version)
  }

  /** Drops a retired key from this node's memory. */
  forget(tenantId: string, version: number): void {
    this.#cache.delete(`${tenantId}\0data\0${version}`)
  }

  /** Adds a new data key version for a tenant; new writes use it, older ciphertexts still open. */
  async rotateDataKey(tenantId: string): Promise<number> {
    const version = await this.#db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('tenant_keys')
        .select(({ fn }) => fn.max('version').as('version'))
        .where('tenant_id', '=', tenantId)
        .where('purpose', '=', 'data')
        .executeTakeFirst()
      const next = Number(row?.version ?? 0) + 1
      await this.#insertKey(trx, tenantId, 'data', next)
      return next
    })
    this.#newest.set(tenantId, version)
    return version
  }

  async encrypt(tenantId: string, field: FieldRef, plaintext: Uint8Array | string): Promise<Buffer> {
    const version = await this.#newestDataKeyVersion(tenantId)
    const key = await this.#key(tenantId, 'data', version)
    const header = Buffer.alloc(HEADER_BYTES)
    header.writeUInt8(FORMAT_VERSION, 0)
    header.writeUInt32BE(version, 1)
    const bytes = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext
    return Buffer.concat([header, sealAesGcm(key, bytes, fieldAad(tenantId, field, header))])
  }

  async decrypt(tenantId: string, field: FieldRef, ciphertext: Uint8Array): Promise<Buffer> {
    const data = Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength)
    if (data.length <= HEADER_BYTES || data.readUInt8(0) !== FORMAT_VERSION) throw new KeyringError()
    const header = data.subarray(0, HEADER_BYTES)
    try {
      const key = await this.#key(tenantId, 'data', header.readUInt32BE(1))
      return openAesGcm(key, data.subarray(HEADER_BYTES), fieldAad(tenantId, field, header))
    } catch {
      throw new KeyringError()
    }
  }

  async decryptText(tenantId: string, field: FieldRef, ciphertext: Uint8Array): Promise<string> {
    return (await this.decrypt(tenantId, field, ciphertext)).toString('utf8')
  }

  /**
   * A keyed blind index (HMAC-SHA-256) for finding an encrypted value without decrypting: equal values in one
   * context give equal indexes; other contexts and other tenants give unrelated ones.
   */
  async blindIndex(tenantId: string, context: string, value: string): Promise<Buffer> {
    const key = await this.#key(tenantId, 'index', 1)
    return createHmac('sha256', key).update(context).update('\0').update(value, 'utf8').digest()
  }

  /**
   * After the provider's KEK was rotated: re-wraps every tenant key still wrapped under an older KEK, in one
   * transaction. Running servers are unaffected: they hold the unwrapped keys, and a provider that meets an unknown
   * KEK id re-reads its key file.
   */
  async rewrapAll(): Promise<number> {
    const current = await this.#provider.currentKekId()
    return this.#db.transaction().execute(async (trx) => {
      const rows = await trx
        .selectFrom('tenant_keys')
        .selectAll()
        .where('kek_id', '!=', current)
        .where('retired_at', 'is', null)
        .forUpdate()
        .execute()
      for (const row of rows) {
        const aad = wrapAad(row.tenant_id, row.purpose, row.version)
        const key = await this.#provider.unwrap(row.kek_id, Buffer.from(row.wrapped_key), aad)
        const { kekId, wrapped } = await this.#provider.wrap(key, aad)
        await trx
          .updateTable('tenant_keys')
          .set({ kek_id: kekId, wrapped_key: wrapped })
          .where('tenant_id', '=', row.tenant_id)
          .where('purpose', '=', row.purpose)
          .where('version', '=', row.version)
          .execute()
      }
      return rows.length
    })
  }

  async #insertKey(db: Kysely<Database>, tenantId: string, purpose: Purpose, version: number): Promise<void> {
    const { kekId, wrapped } = await this.#provider.wrap(randomBytes(32), wrapAad(tenantId, purpose, version))
    await db
      .insertInto('tenant_keys')
      .values({ tenant_id: tenantId, purpose, version, kek_id: kekId, wrapped_key: wrapped, created_at: new Date() })
      .execute()
  }

  /**
   * Loads the tenant's newest data key and its index key, for code about to seal values inside a transaction: on
   * PGlite's one connection a key read from inside a transaction would wait for that transaction forever.
   */
  async preload(tenantId: string): Promise<void> {
    const version = await this.#newestDataKeyVersion(tenantId)
    await Promise.all([this.#key(tenantId, 'data', version), this.#key(tenantId, 'index', 1)])
  }

  async #newestDataKeyVersion(tenantId: string): Promise<number> {
    const known = this.#newest.get(tenantId)
    if (known !== undefined) return known
    const version = await this.currentDataKeyVersion(tenantId)
    this.#newest.set(tenantId, version)
    return version
  }

  #key(tenantId: string, purpose: Purpose, version: number): Promise<Buffer> {
    const cacheKey = `${tenantId}\0${purpose}\0${version}`
    let key = this.#cache.get(cacheKey)
    if (!key) {
      key = this.#loadKey(tenantId, purpose, version)
      key.catch(() => this.#cache.delete(cacheKey))
      this.#cache.set(cacheKey, key)
    }
    return key
  }

  async #loadKey(tenantId: string, purpose: Purpose, version: number): Promise<Buffer> {
    const row = await this.#db
      .selectFrom('tenant_keys')
      .select(['kek_id', 'wrapped_key', 'retired_at'])
      .where('tenant_id', '=', tenantId)
      .where('purpose', '=', purpose)
      .where('version', '=', version)
      .executeTakeFirst()
    if (!row) throw new Error(`no ${purpose} key version ${version} for tenant ${tenantId}`)
    if (row.retired_at) throw new Error(`${purpose} key version ${version} of tenant ${tenantId} is retired`)
    return this.#provider.unwrap(row.kek_id, Buffer.from(row.wrapped_key), wrapAad(tenantId, purpose, version))
  }
}

function wrapAad(tenantId: string, purpose: Purpose, version: number): Buffer {
  return Buffer.from(`strongroom:tenant-key:${tenantId}:${purpose}:${version}`, 'utf8')
}

function fieldAad(tenantId: string, field: FieldRef, header: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`strongroom:v1:${tenantId}:${field.table}:${field.column}:${field.rowId}:`, 'utf8'),
    header,
  ])
}
