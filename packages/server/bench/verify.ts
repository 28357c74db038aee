/**
 * `archive verify` and `audit verify` against the raw SHA-256 rate over the same bytes, at several chain sizes. For each
 * size a fresh tenant gets that many archive records and audit events (written in bulk by SQL, then linked and
 * checkpointed by the real chainers), each chain is verified as the CLI does it, and the ceiling is SHA-256 alone over
 * the bytes verification hashes per record (the previous hash and the canonical fields, and an archive record's sealed
 * content), read back from the database before the clock starts, one `crypto.hash` call each (the fastest SHA-256
 * Node offers for inputs this short, and what verification hashes with). PostgreSQL when DATABASE_URL is set (a fresh
 * database), PGlite otherwise. One JSON line per chain and size.
 *
 *   npm run bench:verify
 *   npm run bench:verify -- --sizes 50000,1000000 --chains archive
 */
import { hash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { type Kysely, sql } from 'kysely'
import { chainArchiveRecords } from '../src/archive/chainer.ts'
import { chainedFields } from '../src/archive/record-hash.ts'
import { verifyArchiveChain } from '../src/archive/verify.ts'
import { chainPendingEvents } from '../src/audit/chainer.ts'
import { operator } from '../src/audit/events.ts'
import { canonicalRecord } from '../src/audit/record-hash.ts'
import { verifyAuditChain } from '../src/audit/verify.ts'
import { canonicalJson } from '../src/platform/canonical-json.ts'
import { loadConfig } from '../src/platform/config.ts'
import { cursorPages } from '../src/platform/db/cursor.ts'
import { migrateToLatest, openDatabase } from '../src/platform/db/database.ts'
import type { Database } from '../src/platform/db/schema.ts'
import { leafHash, MerkleFrontier } from '../src/platform/hash-chain/merkle.ts'
import { Keyring } from '../src/platform/keyring/keyring.ts'
import { LocalKeyFileProvider } from '../src/platform/keyring/local-key-file.ts'
import { TenantSigningKeys, verificationKeys } from '../src/platform/keyring/signing-keys.ts'
import { createTenant } from '../src/tenancy/tenants.ts'
import { createTestDatabase } from '../src/testing/harness.ts'

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '50000,1000000' },
    chains: { type: 'string', default: 'archive,audit' },
  },
})
const sizes = args.sizes.split(',').map(Number)
const chains = args.chains.split(',')

const dir = mkdtempSync(path.join(os.tmpdir(), 'sr-bench-verify-'))
const testDb = await createTestDatabase()
const config = loadConfig({}, { dataDir: dir, databaseUrl: testDb.url, logLevel: 'silent', devSeed: false })
const database = await openDatabase(config, { inMemory: true })
await migrateToLatest(database.db)
const db = database.db
const live = await LocalKeyFileProvider.open(path.join(dir, 'keyring.json'), { create: true })
const policy = { everyRecords: 1000, everySeconds: 3600 }
const log = (line: string) => process.stderr.write(`${line}\n`)
const BULK = 50_000

/** Archive records as the archive writes them (a 256-byte sealed body and its SHA-256), unlinked. */
async function fillArchive(tenantId: string, count: number) {
  for (let from = 1; from <= count; from += BULK) {
    const to = Math.min(count, from + BULK - 1)
    await sql`insert into archive_records (tenant_id, record_class, source_ref, conversation_id, conversation_seq,
        customer_id, occurred_at, key_id, sealed, content_hash, content_digest, details)
      select ${tenantId}, 'secure-message', 'mls:cnv_bench:' || i, 'cnv_bench' || lpad((i % 1000)::text, 16, '0'), i,
        'cus_bench' || lpad((i % 100)::text, 17, '0'), now(), 'adk_bench', s, sha256(s), sha256(s || '\\x00'::bytea),
        '{"sender":{"kind":"device","id":"dev_benchbenchbenchbenchb"},"contentType":"text/plain"}'
      from (select i, convert_to(repeat(md5(i::text), 8), 'UTF8') as s from generate_series(${from}::int, ${to}::int) i) g
    `.execute(db)
  }
  const signers = new TenantSigningKeys(db, live, 'archive-checkpoint')
  while ((await chainArchiveRecords(db, signers, policy)) > 0);
}

/** Audit events as actions write them, unlinked. */
async function fillAudit(tenantId: string, count: number) {
  for (let from = 1; from <= count; from += BULK) {
    const to = Math.min(count, from + BULK - 1)
    await sql`insert into audit_events (tenant_id, occurred_at, actor_kind, actor_id, action, target_kind, target_id,
        outcome, reason, details)
      select ${tenantId}, now(), 'staff', 'stf_bench' || lpad((i % 50)::text, 16, '0'), 'conversation.read',
        'conversation', 'cnv_bench' || lpad((i % 1000)::text, 16, '0'), 'success', null,
        '{"route":"/v1/conversations/:id/messages","ip":"203.0.113.7"}'
      from generate_series(${from}::int, ${to}::int) i
    `.execute(db)
  }
  const signers = new TenantSigningKeys(db, live, 'audit-checkpoint')
  while ((await chainPendingEvents(db, signers, policy)) > 0);
}

/**
 * Seconds SHA-256 alone takes over the bytes a verification hashes per record, and how many bytes that is; and
 * seconds for every SHA-256 a verification cannot do without, those and the Merkle tree's (a leaf hash a record and a
 * node hash on average, to check the checkpoints). The rows are read as the verification reads them (one cursor in
 * one snapshot), and only the hashing is timed.
 */
async function sha256Ceiling(chain: string, tenantId: string) {
  let seconds = 0
  let merkleSeconds = 0
  let bytes = 0
  const frontier = new MerkleFrontier()
  const empty = Buffer.alloc(0)
  const table = chain === 'archive' ? 'archive_records' : 'audit_events'
  await db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute(async (trx: Kysely<Database>) => {
      const query = trx
        .selectFrom(table as 'archive_records')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('seq', 'is not', null)
        .orderBy('seq')
      for await (const rows of cursorPages(trx, query, 10_000)) {
        const inputs = rows.flatMap((r) =>
          'sealed' in r
            ? [Buffer.concat([r.prev_hash ?? empty, Buffer.from(canonicalJson(chainedFields(r)))]), r.sealed ?? empty]
            : [
                Buffer.concat([
                  (r as { prev_hash: Buffer | null }).prev_hash ?? empty,
                  Buffer.from(canonicalRecord(r)),
                ]),
              ],
        )
        const started = performance.now()
        for (const input of inputs) {
          hash('sha256', input, 'buffer')
          bytes += input.length
        }
        seconds += (performance.now() - started) / 1000
        const merkleStarted = performance.now()
        for (const row of rows) frontier.append(leafHash(row.hash ?? empty))
        merkleSeconds += (performance.now() - merkleStarted) / 1000
      }
    })
  return { seconds, merkleSeconds, bytes }
}

log(`verify bench: ${sizes.join(', ')} records; ${chains.join(', ')}; ${database.kind}`)
for (const size of sizes) {
  for (const chain of chains) {
    const tenant = await createTenant({ db, keyring: new Keyring(db, live) }, `Bench ${chain} ${size}`, operator)
    let started = performance.now()
    await (chain === 'archive' ? fillArchive(tenant.id, size) : fillAudit(tenant.id, size))
    log(`${chain} ${size}: written and linked in ${((performance.now() - started) / 1000).toFixed(1)} s`)
    const keys = await verificationKeys(db, chain === 'archive' ? 'archive-checkpoint' : 'audit-checkpoint')
    const heapBefore = process.memoryUsage().heapUsed
    const cpuBefore = process.cpuUsage()
    started = performance.now()
    const verification = await (chain === 'archive' ? verifyArchiveChain : verifyAuditChain)(db, tenant.id, { keys })
    const seconds = (performance.now() - started) / 1000
    const cpu = process.cpuUsage(cpuBefore)
    const heapGrowthMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20
    const records = verification.records
    if (!verification.ok || records < size) throw new Error(`verify failed: ${JSON.stringify(verification)}`)
    const ceiling = await sha256Ceiling(chain, tenant.id)
    const recordsPerSec = records / seconds
    const sha256RecordsPerSec = records / ceiling.seconds
    const requiredSha256RecordsPerSec = records / (ceiling.seconds + ceiling.merkleSeconds)
    console.log(
      JSON.stringify({
        chain,
        database: database.kind,
        records,
        verifyRecordsPerSec: Math.round(recordsPerSec),
        sha256RecordsPerSec: Math.round(sha256RecordsPerSec),
        ratio: Number((recordsPerSec / sha256RecordsPerSec).toFixed(3)),
        requiredSha256RecordsPerSec: Math.round(requiredSha256RecordsPerSec),
        requiredRatio: Number((recordsPerSec / requiredSha256RecordsPerSec).toFixed(3)),
        verifyCpuMicrosPerRecord: Number(((cpu.user + cpu.system) / records).toFixed(1)),
        bytesPerRecord: Math.round(ceiling.bytes / records),
        checkpoints: verification.checkpoints,
        heapGrowthMb: Number(heapGrowthMb.toFixed(1)),
      }),
    )
  }
}
await database.close()
await testDb.drop()
rmSync(dir, { recursive: true, force: true })
