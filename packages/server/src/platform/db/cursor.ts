import { type Compilable, type Kysely, sql } from 'kysely'

/**
 * Reads a query's rows page by page through a server-side cursor (DECLARE … CURSOR, FETCH n): the query is planned and
 * run once, however many rows it has, and only one page is held at a time. Call inside a transaction (a cursor lives
 * in one); the cursor is closed when the reader stops early.
 */
export async function* cursorPages<DB, R>(trx: Kysely<DB>, query: Compilable<R>, pageSize: number) {
  const name = sql.id(`cursor_${Math.random().toString(36).slice(2, 10)}`)
  await sql`declare ${name} no scroll cursor for ${query}`.execute(trx)
  try {
    for (;;) {
      const { rows } = await sql<R>`fetch ${sql.lit(pageSize)} from ${name}`.execute(trx)
      if (rows.length === 0) return
      yield rows
      if (rows.length < pageSize) return
    }
  } finally {
    await sql`close ${name}`.execute(trx)
  }
}
