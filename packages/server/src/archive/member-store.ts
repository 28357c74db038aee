import type { SecureStore } from '@strongroom/sdk/mls-node'
import type { ServerContext } from '../platform/context.ts'
import { openAesGcm, sealAesGcm } from '../platform/keyring/aes-gcm.ts'

/**
 * The archive member's store for one tenant: values sealed with AES-256-GCM under the archive's own key (not the live
 * keyring's), bound to tenant and name. Group states and reading positions are written behind (kept in memory,
 * flushed together in one transaction), because the archive member reads every message of the bank: after a crash it
 * replays from the last flush, and MLS state from that point reads those messages again. Identity keys and key
 * packages are written at once, because a welcome can only be opened with what was stored before it was uploaded.
 */
export class ArchiveMemberStore implements SecureStore {
  readonly #db: ServerContext['db']
  readonly #tenantId: string
  readonly #key: Buffer
  readonly #cache = new Map<string, Uint8Array | null>()
  readonly #dirty = new Set<string>()

  constructor(db: ServerContext['db'], tenantId: string, key: Buffer) {
    this.#db = db
    this.#tenantId = tenantId
    this.#key = key
  }

  #aad(name: string) {
    return Buffer.from(`strongroom:archive-member:${this.#tenantId}:${name}`, 'utf8')
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    const cached = this.#cache.get(name)
    if (cached !== undefined) return cached ?? undefined
    const row = await this.#db
      .selectFrom('archive_member_state')
      .select('sealed')
      .where('tenant_id', '=', this.#tenantId)
      .where('name', '=', name)
      .executeTakeFirst()
    const value = row ? new Uint8Array(openAesGcm(this.#key, row.sealed, this.#aad(name))) : null
    this.#cache.set(name, value)
    return value ?? undefined
  }

  async set(name: string, value: Uint8Array): Promise<void> {
    this.#cache.set(name, Uint8Array.from(value))
    this.#dirty.add(name)
    if (!name.startsWith('mls/group/') && !name.startsWith('mls/read/')) await this.flush()
  }

  async delete(name: string): Promise<void> {
    this.#cache.set(name, null)
    this.#dirty.add(name)
    await this.flush()
  }

  /**
   * Stores the values in one transaction unless the first name holds one already: the workers of a partitioned
   * archive share this store, and two making the tenant's archive identity at once must end up with one. The unique
   * key makes the second insert wait for the first transaction and then find its row.
   */
  async setAllIfAbsent(values: [name: string, value: Uint8Array][]): Promise<boolean> {
    const stored = await this.#db.transaction().execute(async (trx) => {
      for (const [index, [name, value]] of values.entries()) {
        const sealed = sealAesGcm(this.#key, value, this.#aad(name))
        const inserted = await trx
          .insertInto('archive_member_state')
          .values({ tenant_id: this.#tenantId, name, sealed })
          .onConflict((oc) =>
            index === 0 ? oc.doNothing() : oc.columns(['tenant_id', 'name']).doUpdateSet({ sealed }),
          )
          .returning('name')
          .executeTakeFirst()
        if (index === 0 && !inserted) return false
      }
      return true
    })
    for (const [name, value] of values) {
      // What another worker stored is read afresh; what this one stored is known.
      if (stored) this.#cache.set(name, Uint8Array.from(value))
      else this.#cache.delete(name)
      this.#dirty.delete(name)
    }
    return stored
  }

  /** Writes everything changed since the last flush, in one transaction. */
  async flush(): Promise<void> {
    if (this.#dirty.size === 0) return
    const names = [...this.#dirty]
    this.#dirty.clear()
    const writes = names.map((name) => ({ name, value: this.#cache.get(name) }))
    try {
      await this.#db.transaction().execute(async (trx) => {
        for (const { name, value } of writes) {
          if (!value) {
            await trx
              .deleteFrom('archive_member_state')
              .where('tenant_id', '=', this.#tenantId)
              .where('name', '=', name)
              .execute()
            continue
          }
          const sealed = sealAesGcm(this.#key, value, this.#aad(name))
          await trx
            .insertInto('archive_member_state')
            .values({ tenant_id: this.#tenantId, name, sealed })
            .onConflict((oc) => oc.columns(['tenant_id', 'name']).doUpdateSet({ sealed }))
            .execute()
        }
      })
    } catch (error) {
      for (const name of names) this.#dirty.add(name)
      throw error
    }
  }
}
