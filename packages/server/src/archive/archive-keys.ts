import { randomBytes } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Database } from '../platform/db/schema.ts'
import { newId } from '../platform/ids.ts'
import type { KeyProvider } from '../platform/keyring/key-provider.ts'

/** How long a node keeps using a sealing key it unwrapped before it looks again (an erasure elsewhere is seen then). */
const SEALING_KEY_TTL_MS = 30_000

/** Records of a customer are sealed under that customer's key; records of no customer under the tenant's. */
export function keyScope(customerId: string | null): string {
  return customerId === null ? 'tenant' : `customer:${customerId}`
}

function wrapAad(tenantId: string, keyId: string): Buffer {
  return Buffer.from(`strongroom:archive-key:${tenantId}:${keyId}`, 'utf8')
}

/**
 * The archive's own key hierarchy: a data key per customer (per tenant for what belongs to no customer), AES-256,
 * wrapped by the archive's key-encryption key (its own key file or HSM slot, never the live keyring's). Destroying a
 * customer's key is that customer's crypto-shredding: their records stay in the chain and can never be read again.
 */
export class ArchiveKeys {
  readonly #db: Kysely<Database>
  readonly #kek: KeyProvider
  readonly #sealing = new Map<string, { at: number; key: Promise<{ id: string; key: Buffer }> }>()

  constructor(db: Kysely<Database>, kek: KeyProvider) {
    this.#db = db
    this.#kek = kek
  }

  /** The key new records of a scope are sealed under, made on first need (the first writer wins a race). */
  sealingKey(tenantId: string, scope: string): Promise<{ id: string; key: Buffer }> {
    const cacheKey = `${tenantId}\0${scope}`
    const cached = this.#sealing.get(cacheKey)
    if (cached && Date.now() - cached.at < SEALING_KEY_TTL_MS) return cached.key
    const key = this.#loadOrCreate(tenantId, scope)
    key.catch(() => this.#sealing.delete(cacheKey))
    this.#sealing.set(cacheKey, { at: Date.now(), key })
    return key
  }

  /**
   * The keys that still exist among those named, unwrapped, read fresh from the database (no cache, so an erasure
   * on another node is honoured at once). A destroyed or unknown key is simply absent.
   */
  async openingKeys(tenantId: string, keyIds: Iterable<string>): Promise<Map<string, Buffer>> {
    const ids = [...new Set(keyIds)]
    const keys = new Map<string, Buffer>()
    if (ids.length === 0) return keys
    const rows = await this.#db
      .selectFrom('archive_keys')
      .select(['id', 'kek_id', 'wrapped_key'])
      .where('tenant_id', '=', tenantId)
      .where('id', 'in', ids)
      .where('destroyed_at', 'is', null)
      .execute()
    for (const row of rows) {
      if (!row.kek_id || !row.wrapped_key) continue
      keys.set(row.id, await this.#kek.unwrap(row.kek_id, Buffer.from(row.wrapped_key), wrapAad(tenantId, row.id)))
    }
    return keys
  }

  /** Forgets a scope's sealing key on this node (after destroying it here). */
  forget(tenantId: string, scope: string): void {
    this.#sealing.delete(`${tenantId}\0${scope}`)
  }

  async #loadOrCreate(tenantId: string, scope: string): Promise<{ id: string; key: Buffer }> {
    const live = () =>
      this.#db
        .selectFrom('archive_keys')
        .select(['id', 'kek_id', 'wrapped_key'])
        .where('tenant_id', '=', tenantId)
        .where('scope', '=', scope)
        .where('destroyed_at', 'is', null)
        .executeTakeFirst()
    let row = await live()
    if (!row) {
      const id = newId('ark')
      const { kekId, wrapped } = await this.#kek.wrap(randomBytes(32), wrapAad(tenantId, id))
      await this.#db
        .insertInto('archive_keys')
        .values({ id, tenant_id: tenantId, scope, kek_id: kekId, wrapped_key: wrapped, created_at: new Date() })
        .onConflict((oc) => oc.doNothing())
        .execute()
      row = (await live()) as NonNullable<typeof row>
    }
    if (!row.kek_id || !row.wrapped_key) throw new Error('archive key without key material')
    const key = await this.#kek.unwrap(row.kek_id, Buffer.from(row.wrapped_key), wrapAad(tenantId, row.id))
    return { id: row.id, key }
  }
}

/** Destroys a scope's live key in the caller's transaction: the key material is gone, the row stays as evidence. */
export async function destroyArchiveKey(
  trx: Kysely<Database>,
  tenantId: string,
  scope: string,
  at: Date,
): Promise<string | undefined> {
  const row = await trx
    .updateTable('archive_keys')
    .set({ kek_id: null, wrapped_key: null, destroyed_at: at })
    .where('tenant_id', '=', tenantId)
    .where('scope', '=', scope)
    .where('destroyed_at', 'is', null)
    .returning('id')
    .executeTakeFirst()
  return row?.id
}

/**
 * After the archive's KEK was rotated: re-wraps every live archive key (and the archive member's own data keys)
 * still wrapped under an older KEK, in one transaction. Destroyed keys have nothing left to re-wrap.
 */
export async function rewrapArchiveKeys(db: Kysely<Database>, kek: KeyProvider): Promise<number> {
  const current = await kek.currentKekId()
  return db.transaction().execute(async (trx) => {
    const rows = await trx
      .selectFrom('archive_keys')
      .select(['id', 'tenant_id', 'kek_id', 'wrapped_key'])
      .where('kek_id', '!=', current)
      .where('destroyed_at', 'is', null)
      .forUpdate()
      .execute()
    for (const row of rows) {
      if (!row.kek_id || !row.wrapped_key) continue
      const aad = wrapAad(row.tenant_id, row.id)
      const key = await kek.unwrap(row.kek_id, Buffer.from(row.wrapped_key), aad)
      const { kekId, wrapped } = await kek.wrap(key, aad)
      await trx
        .updateTable('archive_keys')
        .set({ kek_id: kekId, wrapped_key: wrapped })
        .where('id', '=', row.id)
        .execute()
    }
    return rows.length
  })
}
