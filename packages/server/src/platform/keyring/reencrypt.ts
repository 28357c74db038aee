import { type Kysely, sql } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { FieldRef, Keyring } from './keyring.ts'

/**
 * A column the keyring encrypts, as the capability that owns it describes it: where it is, the columns naming a row,
 * the associated data of a row's value (the capability's own field reference), and, for a column whose other rows
 * clients encrypt themselves, which rows are the keyring's.
 */
export interface EncryptedColumn {
  table: string
  column: string
  key: readonly string[]
  field(row: Record<string, string>): FieldRef
  only?: { column: string; values: readonly string[] }
}

/** Why a data key cannot be retired; the CLI prints it. */
export class RetireRefused extends Error {
  override name = 'RetireRefused'
}

const BATCH = 200

function versionBytes(version: number): Buffer {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(version)
  return bytes
}

/** The rows of a column sealed under a data key version (`=`) or under any other (`<>`). */
function sealedRows(db: Kysely<Database>, tenantId: string, column: EncryptedColumn, op: '=' | '<>', version: number) {
  const value = sql.ref(column.column)
  let query = db
    .selectFrom(sql.table(column.table).as('t') as never)
    .where(sql.ref('tenant_id') as never, '=', tenantId as never)
    .where(
      sql<boolean>`${value} is not null and substring(${value} from 2 for 4) ${sql.raw(op)} ${versionBytes(version)}`,
    )
  if (column.only) query = query.where(sql.ref(column.only.column) as never, 'in', column.only.values as never)
  return query
}

/**
 * Moves every value of a tenant's encrypted columns to its newest data key, in batches (each value decrypted and
 * sealed again with the same associated data, and written back only if nobody changed it meanwhile), calling
 * `onProgress` after each batch. Servers keep running: what they write meanwhile is sealed under the newest key
 * already. Returns how many values moved.
 */
export async function reencryptTenant(
  db: Kysely<Database>,
  keyring: Keyring,
  tenantId: string,
  columns: readonly EncryptedColumn[],
  onProgress: (done: number, total: number) => void = () => {},
): Promise<number> {
  const newest = await keyring.currentDataKeyVersion(tenantId)
  let total = 0
  for (const column of columns) {
    const row = await sealedRows(db, tenantId, column, '<>', newest)
      .select(sql<number>`count(*)::int`.as('n'))
      .executeTakeFirstOrThrow()
    total += (row as { n: number }).n
  }
  let done = 0
  onProgress(done, total)
  for (const column of columns) {
    for (;;) {
      const rows = (await sealedRows(db, tenantId, column, '<>', newest)
        .select([...column.key, column.column].map((name) => sql.ref(name).as(name)) as never)
        .limit(BATCH)
        .execute()) as Record<string, string | Buffer>[]
      if (rows.length === 0) break
      for (const row of rows) {
        const field = column.field(row as Record<string, string>)
        const old = row[column.column] as Buffer
        const sealed = await keyring.encrypt(tenantId, field, await keyring.decrypt(tenantId, field, old))
        let update = db
          .updateTable(sql.table(column.table).as('t') as never)
          .set({ [column.column]: sealed } as never)
          .where(sql.ref('tenant_id') as never, '=', tenantId as never)
          .where(sql.ref(column.column) as never, '=', old as never)
        for (const key of column.key) update = update.where(sql.ref(key) as never, '=', row[key] as never)
        await update.execute()
        done++
      }
      onProgress(Math.min(done, total), total)
    }
  }
  return done
}

/**
 * Retires a tenant's data key version: refused while it is the newest (it encrypts new values) or while any value is
 * still sealed under it (run `keys reencrypt` first). A retired key is erased, wrapped form and all: what it sealed,
 * if anything escaped the column list, can no longer be opened.
 */
export async function retireDataKey(
  db: Kysely<Database>,
  keyring: Keyring,
  tenantId: string,
  version: number,
  columns: readonly EncryptedColumn[],
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const key = await trx
      .selectFrom('tenant_keys')
      .select(['retired_at'])
      .where('tenant_id', '=', tenantId)
      .where('purpose', '=', 'data')
      .where('version', '=', version)
      .forUpdate()
      .executeTakeFirst()
    if (!key) throw new RetireRefused(`tenant ${tenantId} has no data key version ${version}`)
    if (key.retired_at) throw new RetireRefused(`data key version ${version} is already retired`)
    if (version === (await keyring.currentDataKeyVersion(tenantId, trx))) {
      throw new RetireRefused(`data key version ${version} is the newest: rotate first (keys rotate --data-keys)`)
    }
    for (const column of columns) {
      const row = await sealedRows(trx, tenantId, column, '=', version)
        .select(sql<number>`count(*)::int`.as('n'))
        .executeTakeFirstOrThrow()
      const inUse = (row as { n: number }).n
      if (inUse > 0) {
        throw new RetireRefused(
          `data key version ${version} still seals ${inUse} value(s) in ${column.table}.${column.column}: run keys reencrypt first`,
        )
      }
    }
    await trx
      .updateTable('tenant_keys')
      .set({ retired_at: new Date(), wrapped_key: Buffer.alloc(0) })
      .where('tenant_id', '=', tenantId)
      .where('purpose', '=', 'data')
      .where('version', '=', version)
      .execute()
  })
  keyring.forget(tenantId, version)
}
