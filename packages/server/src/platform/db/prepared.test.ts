/**
 * A statement marked PREPARED (the message log's batch) is parsed by PostgreSQL once per connection and run by name
 * after; others are not kept; and a connection that breaks takes its statement with it, the next one prepares again.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { sql } from 'kysely'
import pg from 'pg'
import { createTestDatabase, type TestDatabase } from '../../testing/harness.ts'
import { type DatabaseHandle, openDatabase, PREPARED } from './database.ts'

// PGlite has no prepared statements of a connection to look at. Under CI it runs, and fails without PostgreSQL.
const skip = !process.env.DATABASE_URL && !process.env.CI && 'needs DATABASE_URL (PostgreSQL)'

describe('prepared statements', { skip }, () => {
  let database: TestDatabase
  let handle: DatabaseHandle

  before(async () => {
    database = await createTestDatabase()
    // One connection: every statement below runs on the same backend until it is ended.
    handle = await openDatabase({
      databaseUrl: database.url,
      databasePoolSize: 1,
      statementTimeoutMs: 10_000,
      dataDir: '/nonexistent',
    })
  })
  after(async () => {
    await handle?.close()
    await database?.drop()
  })

  const marked = (n: number) => sql<{ n: number }>`${sql.raw(PREPARED)}select ${n}::int + 1 as n`.execute(handle.db)
  const kept = async () =>
    (
      await sql<{ name: string; statement: string }>`select name, statement from pg_prepared_statements`.execute(
        handle.db,
      )
    ).rows

  test('a marked statement is kept under one name and answers with each execution’s values', async () => {
    assert.deepEqual((await marked(1)).rows, [{ n: 2 }])
    assert.deepEqual((await marked(41)).rows, [{ n: 42 }])
    await sql`select ${1}::int as unmarked`.execute(handle.db)
    const statements = await kept()
    assert.equal(statements.length, 1, JSON.stringify(statements))
    assert.match(statements[0]?.statement ?? '', /^\/\* prepared \*\/ select \$1::int \+ 1 as n$/)
  })

  test('after the connection is lost, the next connection prepares it again', async () => {
    const admin = new pg.Client({ connectionString: process.env.DATABASE_URL })
    await admin.connect()
    const name = new URL(database.url as string).pathname.slice(1)
    await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1', [name])
    await admin.end()
    // The broken client is discarded when its query fails; the pool opens a fresh one for the next.
    await marked(1).catch(() => undefined)
    assert.deepEqual((await marked(2)).rows, [{ n: 3 }])
    assert.equal((await kept()).length, 1)
  })
})
