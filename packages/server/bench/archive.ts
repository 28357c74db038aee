/**
 * The compliance archive's append and verify rates over many records (one tenant's chain), with the raw SHA-256 rate
 * of the same bytes (each record's previous hash and canonical fields, and its sealed content) printed beside them
 * as the ceiling. PGlite in memory unless DATABASE_URL names a PostgreSQL server (a fresh database is made there).
 *
 *   npm run bench:archive
 *   npm run bench:archive -- --records 100000 --batch 1000
 */
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import canonicalize from 'canonicalize'
import { type ArchiveInput, archiveRecords } from '../src/archive/append.ts'
import { chainArchiveRecords } from '../src/archive/chainer.ts'
import { chainedFields } from '../src/archive/record-hash.ts'
import { verifyArchiveChain } from '../src/archive/verify.ts'
import { operator } from '../src/audit/events.ts'
import { loadConfig } from '../src/platform/config.ts'
import { migrateToLatest, openDatabase } from '../src/platform/db/database.ts'
import { Keyring } from '../src/platform/keyring/keyring.ts'
import { LocalKeyFileProvider } from '../src/platform/keyring/local-key-file.ts'
import { TenantSigningKeys, verificationKeys } from '../src/platform/keyring/signing-keys.ts'
import { createTenant } from '../src/tenancy/tenants.ts'
import { createTestDatabase } from '../src/testing/harness.ts'

const { values: args } = parseArgs({
  options: { records: { type: 'string', default: '1000000' }, batch: { type: 'string', default: '1000' } },
})
const total = Number(args.records)
const batch = Number(args.batch)

const dir = mkdtempSync(path.join(os.tmpdir(), 'sr-bench-archive-'))
const testDb = await createTestDatabase()
const config = loadConfig({}, { dataDir: dir, databaseUrl: testDb.url, logLevel: 'silent', devSeed: false })
const database = await openDatabase(config, { inMemory: true })
await migrateToLatest(database.db)
const db = database.db
const live = await LocalKeyFileProvider.open(path.join(dir, 'keyring.json'), { create: true })
const archiveKek = await LocalKeyFileProvider.open(path.join(dir, 'archive-keyring.json'), { create: true })
const tenant = await createTenant({ db, keyring: new Keyring(db, live) }, 'Bench Bank', operator)
const signers = new TenantSigningKeys(db, live, 'archive-checkpoint')
const policy = { everyRecords: 1000, everySeconds: 60 }
const ctx = { db, archiveKek }

const text = 'Please move 250.00 EUR to my savings account and confirm when it is done. Thank you!'
const customers = Array.from({ length: 100 }, (_, i) => `cus_bench${String(i).padStart(17, '0')}`)
const rate = (n: number, ms: number) => `${Math.round((n / ms) * 1000).toLocaleString('en')}/s`

process.stderr.write(`archive bench: ${total.toLocaleString('en')} records, batches of ${batch}, ${database.kind}\n`)
let appendMs = 0
let chainMs = 0
for (let done = 0; done < total; done += batch) {
  const inputs: ArchiveInput[] = []
  for (let i = done; i < Math.min(total, done + batch); i++) {
    inputs.push({
      tenantId: tenant.id,
      recordClass: 'secure-message',
      sourceRef: `mls:cnv_bench:${i}`,
      conversationId: `cnv_bench${String(i % 1000).padStart(16, '0')}`,
      conversationSeq: i,
      customerId: customers[i % customers.length] as string,
      occurredAt: new Date(),
      content: { sender: { kind: 'device', id: 'dev_benchbenchbenchbenchb' }, text },
    })
  }
  let started = performance.now()
  await archiveRecords(ctx, inputs)
  appendMs += performance.now() - started
  started = performance.now()
  await chainArchiveRecords(db, signers, policy)
  chainMs += performance.now() - started
  if (process.stderr.isTTY) process.stderr.write(`\rappended ${Math.min(total, done + batch)}`)
}
if (process.stderr.isTTY) process.stderr.write('\n')

let started = performance.now()
const verification = await verifyArchiveChain(db, tenant.id, { keys: await verificationKeys(db, 'archive-checkpoint') })
const verifyMs = performance.now() - started
if (!verification.ok || verification.records !== total)
  throw new Error(`verify failed: ${JSON.stringify(verification)}`)

// The ceiling: SHA-256 alone over the same bytes the chain hashes per record (previous hash + canonical fields, and
// the sealed content), read back from the database page by page; only the hashing is timed.
let hashMs = 0
let bytes = 0
for (let after = 0; after < total; ) {
  const rows = await db
    .selectFrom('archive_records')
    .selectAll()
    .where('tenant_id', '=', tenant.id)
    .where('seq', '>', after)
    .orderBy('seq')
    .limit(10_000)
    .execute()
  const inputs = rows.map((r) => [
    Buffer.concat([Buffer.from(r.prev_hash ?? []), Buffer.from(canonicalize(chainedFields(r)) as string)]),
    Buffer.from(r.sealed ?? []),
  ])
  started = performance.now()
  for (const [chained, sealed] of inputs) {
    createHash('sha256')
      .update(chained as Buffer)
      .digest()
    createHash('sha256')
      .update(sealed as Buffer)
      .digest()
    bytes += (chained as Buffer).length + (sealed as Buffer).length
  }
  hashMs += performance.now() - started
  after = Number(rows.at(-1)?.seq)
}

const { size } = await db
  .selectFrom('archive_checkpoints')
  .select(({ fn }) => fn.countAll<number>().as('size'))
  .executeTakeFirstOrThrow()
console.log(
  JSON.stringify(
    {
      database: database.kind,
      records: total,
      checkpoints: Number(size),
      append: {
        sealAndInsert: rate(total, appendMs),
        chainAndCheckpoint: rate(total, chainMs),
        endToEnd: rate(total, appendMs + chainMs),
      },
      verify: rate(total, verifyMs),
      sha256Ceiling: { records: rate(total, hashMs), bytesPerRecord: Math.round(bytes / total) },
    },
    null,
    2,
  ),
)
await database.close()
await testDb.drop()
rmSync(dir, { recursive: true, force: true })
