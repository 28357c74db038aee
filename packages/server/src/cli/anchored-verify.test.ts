import assert from 'node:assert/strict'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import path from 'node:path'
import { describe, test } from 'node:test'
import { archiveRecords } from '../archive/append.ts'
import { operator } from '../audit/events.ts'
import { verifyAuditChain } from '../audit/verify.ts'
import { createCustomer } from '../identity/customers.ts'
import { loadConfig } from '../platform/config.ts'
import { type Db, openDatabase } from '../platform/db/database.ts'
import { signCheckpoint } from '../platform/hash-chain/checkpoint.ts'
import { leafHash, MerkleFrontier } from '../platform/hash-chain/merkle.ts'
import { type WitnessEntry, witnessEntry } from '../platform/hash-chain/witness.ts'
import { openKeyProvider } from '../platform/keyring/open-provider.ts'
import { openSigningKey, verificationKeys } from '../platform/keyring/signing-keys.ts'
import { createLogger } from '../platform/logging.ts'
import { startServer } from '../server.ts'
import { createStaff } from '../tenancy/staff.ts'
import { createTenant } from '../tenancy/tenants.ts'
import { attackerKey, forgeAuditTail, rewriteChain } from '../testing/chain-rewrite.ts'
import { cliHarness } from '../testing/cli.ts'
import { testKeyProvider } from '../testing/softhsm.ts'

// Issue 14: a rewritten history (records changed or deleted, every hash and tree head recomputed, every checkpoint
// signed again) passed `audit verify` and `archive verify`, which took their keys from the database they verified.
describe('audit verify and archive verify trust only keys and a witness from outside the database', () => {
  const cli = cliHarness()
  const paths = () => ({
    keys: path.join(cli.dir, 'trusted.jwks'),
    witness: path.join(cli.dir, 'witness.jsonl'),
  })
  const tenants: Record<'added' | 'swapped' | 'stolen' | 'tail' | 'archive' | 'archiveStolen' | 'crossed', string> = {
    crossed: '',
    added: '',
    swapped: '',
    stolen: '',
    tail: '',
    archive: '',
    archiveStolen: '',
  }
  const webhookEntries: WitnessEntry[] = []

  const cliConfig = () =>
    loadConfig({}, { dataDir: cli.dir, databaseUrl: cli.database.url, ...testKeyProvider().config })
  const database = async () => openDatabase(cliConfig())
  /** The first step of every audit rewrite here: record 3 of a chain says something else. */
  const changeAuditRecord3 = (db: Db, tenantId: string) =>
    db
      .updateTable('audit_events')
      .set({ reason: 'rewritten' })
      .where('tenant_id', '=', tenantId)
      .where('seq', '=', 3)
      .execute()

  test('the server writes every checkpoint to the witness file and webhook; verify holds on the untouched chains', async () => {
    const webhook = createServer((request, response) => {
      let body = ''
      request.on('data', (chunk) => {
        body += chunk
      })
      request.on('end', () => {
        webhookEntries.push(...(JSON.parse(body) as { entries: WitnessEntry[] }).entries)
        response.writeHead(204).end()
      })
    })
    webhook.listen(0, '127.0.0.1')
    await once(webhook, 'listening')
    const { port } = webhook.address() as { port: number }
    const config = loadConfig(
      {},
      {
        port: 0,
        dataDir: cli.dir,
        databaseUrl: cli.database.url,
        logLevel: 'silent',
        devSeed: false,
        auditCheckpointRecords: 5,
        archiveCheckpointRecords: 5,
        witnessFile: paths().witness,
        witnessUrl: `http://127.0.0.1:${port}/witness`,
        ...testKeyProvider().config,
      },
    )
    const server = await startServer(config, { logger: createLogger('silent') })
    try {
      for (const name of Object.keys(tenants) as (keyof typeof tenants)[]) {
        const tenant = await createTenant(server.ctx, `Bank ${name}`, operator)
        tenants[name] = tenant.id
        await server.flushAudit()
        // Staff changes until the audit chain is ten records long: checkpoints at 5 and 10, nothing unsealed.
        const { n } = await server.ctx.db
          .selectFrom('audit_events')
          .select(({ fn }) => fn.countAll<number>().as('n'))
          .where('tenant_id', '=', tenant.id)
          .executeTakeFirstOrThrow()
        for (let i = Number(n); i < 10; i++) {
          await createStaff(server.ctx, tenant.id, { name: `s${i}`, role: 'agent' }, operator)
        }
        const customer = await createCustomer(server.ctx, tenant.id, { externalRef: 'C-1', displayName: 'Customer' })
        await archiveRecords(
          server.ctx,
          Array.from({ length: 10 }, (_, i) => ({
            tenantId: tenant.id,
            recordClass: 'public-message' as const,
            sourceRef: `channel:anchored:${i}`,
            conversationId: null,
            conversationSeq: null,
            customerId: customer.id,
            occurredAt: new Date(),
            content: { text: `public message ${i}` },
          })),
        )
      }
      await server.flushAudit()
      await server.flushArchive()
      await server.flushAudit()
    } finally {
      await server.close()
      webhook.close()
    }

    const exported = cli.run(['keys', 'export-public'])
    assert.equal(exported.status, 0, exported.stderr)
    const jwks = JSON.parse(exported.stdout) as {
      keys: { kid: string; kty: string; crv: string; d?: string; tid?: string }[]
    }
    // Each bank's own audit and archive checkpoint keys, marked with the bank; the system chain's audit key.
    assert.deepEqual(
      jwks.keys.map((k) => [k.kid, k.kty, k.crv, 'd' in k, k.tid]).sort(),
      [
        ...Object.values(tenants).flatMap((t) => [
          [`archive-checkpoint-${t}-1`, 'OKP', 'Ed25519', false, t],
          [`audit-checkpoint-${t}-1`, 'OKP', 'Ed25519', false, t],
        ]),
        ['audit-checkpoint-system-1', 'OKP', 'Ed25519', false, 'system'],
      ].sort(),
    )
    const oneBank = JSON.parse(cli.run(['keys', 'export-public', '--tenant', tenants.tail]).stdout) as typeof jwks
    assert.deepEqual(oneBank.keys.map((k) => k.tid).sort(), [tenants.tail, tenants.tail])
    writeFileSync(paths().keys, exported.stdout)

    const witnessed = readFileSync(paths().witness, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as WitnessEntry)
    for (const tenantId of Object.values(tenants)) {
      for (const type of ['strongroom-audit-checkpoint/v1', 'strongroom-archive-checkpoint/v1']) {
        const sizes = witnessed.filter((e) => e.tenantId === tenantId && e.type === type).map((e) => e.treeSize)
        assert.deepEqual(sizes, [5, 10], `${type} of ${tenantId}`)
      }
    }
    assert.deepEqual(
      webhookEntries.map((e) => e.signature).sort(),
      witnessed.map((e) => e.signature).sort(),
      'the webhook got every checkpoint the file did',
    )

    for (const what of ['audit', 'archive']) {
      const verified = cli.run([what, 'verify', '--keys', paths().keys, '--witness', paths().witness])
      assert.equal(verified.status, 0, verified.stderr)
      const results = JSON.parse(verified.stdout) as { tenantId: string; witnessed: number; unsealed: number }[]
      const ours = results.filter((r) => Object.values(tenants).includes(r.tenantId))
      assert.deepEqual(
        ours.map((r) => [r.witnessed, r.unsealed]),
        Object.values(tenants).map(() => [2, 0]),
      )
    }
  })

  test('the witness file alone shows each tree head extends the one before; a fork or a head that does not is named', async () => {
    const witnessed = readFileSync(paths().witness, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as WitnessEntry)
    const later = witnessed.filter((e) => e.treeSize === 10)
    assert.ok(later.length > 0 && later.every((e) => e.consistency?.fromTreeSize === 5))
    const checked = cli.run(['witness', 'verify', '--keys', paths().keys, '--witness', paths().witness])
    assert.equal(checked.status, 0, checked.stderr)
    const ours = Object.keys(tenants).length * 2
    assert.deepEqual(JSON.parse(checked.stdout), {
      ok: true,
      chains: ours,
      entries: ours * 2,
      proven: ours,
      unproven: ours,
    })

    // Heads made with the real (stolen) audit key: the witness file shows what the key alone cannot hide.
    const tenantId = tenants.tail
    const { db, close } = await database()
    const provider = await openKeyProvider(cliConfig(), { create: false })
    const signer = await openSigningKey(db, provider, 'audit-checkpoint', tenantId)
    await close()
    const headOf = (size: number, salt: string) => {
      const frontier = new MerkleFrontier()
      for (let i = 0; i < size; i++) frontier.append(leafHash(Buffer.from(`${salt}${i}`)))
      return signCheckpoint('audit', signer, tenantId, frontier)
    }
    const tenTail = witnessed.find((e) => e.tenantId === tenantId && e.treeSize === 10 && e.type.includes('audit'))
    const variants: [string, (line: string) => string, RegExp][] = [
      [
        'a second head of size 10 (a fork)',
        () => JSON.stringify(witnessEntry('audit', headOf(10, 'forged'))),
        /tree head 10 two different tree heads of the same size \(a fork\)/,
      ],
      [
        'a head of size 15 whose proof does not lead from the head of 10',
        () =>
          JSON.stringify(
            witnessEntry('audit', headOf(15, 'rewritten'), {
              fromTreeSize: 10,
              fromRootHash: tenTail?.rootHash as string,
              proof: (tenTail?.consistency?.proof ?? []).slice(0, 1),
            }),
          ),
        /tree head 15 does not extend the tree head of size 10/,
      ],
    ]
    for (const [what, extra, expected] of variants) {
      const file = path.join(cli.dir, 'witness-variant.jsonl')
      writeFileSync(file, `${readFileSync(paths().witness, 'utf8')}${extra('')}\n`)
      const refused = cli.run(['witness', 'verify', '--keys', paths().keys, '--witness', file])
      assert.equal(refused.status, 1, what)
      assert.match(refused.stderr, expected, what)
    }
    // A proof in the file altered: refused too.
    const tampered = readFileSync(paths().witness, 'utf8').replace(
      tenTail?.consistency?.proof[0] as string,
      '0'.repeat(64),
    )
    const file = path.join(cli.dir, 'witness-tampered.jsonl')
    writeFileSync(file, tampered)
    const refused = cli.run(['witness', 'verify', '--keys', paths().keys, '--witness', file])
    assert.equal(refused.status, 1)
    assert.match(refused.stderr, /tree head 10 does not extend the tree head of size 5/)
  })

  test('verify refuses to run on keys from the database it verifies, and on a file holding a private key', () => {
    const without = cli.run(['audit', 'verify'])
    assert.equal(without.status, 2)
    assert.match(without.stderr, /audit verify needs --keys JWKS/)
    const privateFile = path.join(cli.dir, 'private.jwks')
    const { privateKey } = attackerKey('x')
    writeFileSync(privateFile, JSON.stringify({ keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'x' }] }))
    const refused = cli.run(['archive', 'verify', '--keys', privateFile])
    assert.equal(refused.status, 1)
    assert.match(refused.stderr, /holds a private key: export public keys only/)
  })

  test('record 3 changed, the chain recomputed and re-signed with a key added to signing_keys: refused', async () => {
    const { db, close } = await database()
    try {
      const tenantId = tenants.added
      await changeAuditRecord3(db, tenantId)
      const attacker = attackerKey('audit-checkpoint-9')
      await db
        .insertInto('signing_keys')
        .values({
          id: attacker.id,
          purpose: 'audit-checkpoint',
          public_key: attacker.publicKey.export({ format: 'der', type: 'spki' }),
          kek_id: 'kek-1',
          wrapped_private_key: Buffer.alloc(64),
        })
        .execute()
      await rewriteChain(db, 'audit', tenantId, attacker, 5)
      // The attack is real: with the database's own keys the rewritten chain verifies.
      const fromDatabase = await verifyAuditChain(db, tenantId, {
        keys: await verificationKeys(db, 'audit-checkpoint'),
      })
      assert.equal(fromDatabase.ok, true)
    } finally {
      await close()
    }
    const verified = cli.run(['audit', 'verify', '--keys', paths().keys, '--tenant', tenants.added])
    assert.equal(verified.status, 1)
    assert.equal(
      verified.stderr,
      `strongroom: audit chain ${tenants.added} fails at record 5: checkpoint 5 is signed by a key that is not trusted (audit-checkpoint-9)\n`,
    )
  })

  test("a bank's chain re-signed with another bank's genuine, exported key: refused", async () => {
    const { db, close } = await database()
    const provider = await openKeyProvider(cliConfig(), { create: false })
    try {
      await changeAuditRecord3(db, tenants.crossed)
      const otherBanksKey = await openSigningKey(db, provider, 'audit-checkpoint', tenants.tail)
      await rewriteChain(db, 'audit', tenants.crossed, otherBanksKey, 5)
    } finally {
      await provider.close()
      await close()
    }
    const verified = cli.run(['audit', 'verify', '--keys', paths().keys, '--tenant', tenants.crossed])
    assert.equal(verified.status, 1)
    assert.equal(
      verified.stderr,
      `strongroom: audit chain ${tenants.crossed} fails at record 5: checkpoint 5 is signed by a key that is not trusted (audit-checkpoint-${tenants.tail}-1)\n`,
    )
  })

  /** The genuine public key of the swapped bank's key, kept while a test has swapped the attacker's into its row. */
  let swappedPublicKey = Buffer.alloc(0)

  test('the public key swapped in the existing signing_keys row and every checkpoint re-signed: refused', async () => {
    const { db, close } = await database()
    const attacker = attackerKey(`audit-checkpoint-${tenants.swapped}-1`)
    try {
      await changeAuditRecord3(db, tenants.swapped)
      await rewriteChain(db, 'audit', tenants.swapped, attacker, 5)
      const genuine = await db
        .selectFrom('signing_keys')
        .select('public_key')
        .where('id', '=', `audit-checkpoint-${tenants.swapped}-1`)
        .executeTakeFirstOrThrow()
      swappedPublicKey = Buffer.from(genuine.public_key)
      await db
        .updateTable('signing_keys')
        .set({ public_key: attacker.publicKey.export({ format: 'der', type: 'spki' }) })
        .where('id', '=', `audit-checkpoint-${tenants.swapped}-1`)
        .execute()
    } finally {
      await close()
    }
    const verified = cli.run(['audit', 'verify', '--keys', paths().keys, '--tenant', tenants.swapped])
    assert.equal(verified.status, 1)
    assert.equal(
      verified.stderr,
      `strongroom: audit chain ${tenants.swapped} fails at record 5: checkpoint 5 has a bad signature\n`,
    )
  })

  test('with the signing key itself stolen, the witness still names the first rewritten checkpoint', async () => {
    const { db, close } = await database()
    try {
      const provider = await openKeyProvider(cliConfig(), { create: false })
      // The forgeries of the previous tests are undone first: this attacker needs no forged key row.
      await db.deleteFrom('signing_keys').where('id', '=', 'audit-checkpoint-9').execute()
      await db
        .updateTable('signing_keys')
        .set({ public_key: swappedPublicKey })
        .where('id', '=', `audit-checkpoint-${tenants.swapped}-1`)
        .execute()
      const stolen = await openSigningKey(db, provider, 'archive-checkpoint', tenants.archiveStolen)
      await changeAuditRecord3(db, tenants.stolen)
      const stolenAudit = await openSigningKey(db, provider, 'audit-checkpoint', tenants.stolen)
      await rewriteChain(db, 'audit', tenants.stolen, stolenAudit, 5)
      // The archive: record 4 deleted, the rest numbered again, and the whole chain re-signed.
      await db
        .deleteFrom('archive_records')
        .where('tenant_id', '=', tenants.archiveStolen)
        .where('seq', '=', 4)
        .execute()
      await rewriteChain(db, 'archive', tenants.archiveStolen, stolen, 5)
    } finally {
      await close()
    }
    // The swapped row of the previous test does not matter here: the trusted keys come from the exported file.
    const keysOnly = cli.run(['audit', 'verify', '--keys', paths().keys, '--tenant', tenants.stolen])
    assert.equal(keysOnly.status, 0, 'a stolen current key re-signs a history the keys alone accept')
    const audit = cli.run([
      'audit',
      'verify',
      '--keys',
      paths().keys,
      '--tenant',
      tenants.stolen,
      '--witness',
      paths().witness,
    ])
    assert.equal(audit.status, 1)
    assert.equal(
      audit.stderr,
      `strongroom: audit chain ${tenants.stolen} fails at record 5: records up to 5 do not match their witnessed checkpoint\n`,
    )
    const archive = cli.run(['archive', 'verify', '--keys', paths().keys, '--tenant', tenants.archiveStolen], {
      STRONGROOM_WITNESS_FILE: paths().witness,
    })
    assert.equal(archive.status, 1)
    assert.equal(
      archive.stderr,
      `strongroom: archive chain ${tenants.archiveStolen} fails at record 5: records up to 5 do not match their witnessed checkpoint\n`,
    )
  })

  test('a record deleted from the archive and the rest renumbered, re-signed with an added key: refused', async () => {
    const { db, close } = await database()
    try {
      await db.deleteFrom('archive_records').where('tenant_id', '=', tenants.archive).where('seq', '=', 4).execute()
      await rewriteChain(db, 'archive', tenants.archive, attackerKey('archive-checkpoint-2'), 5)
    } finally {
      await close()
    }
    const verified = cli.run(['archive', 'verify', '--keys', paths().keys, '--tenant', tenants.archive])
    assert.equal(verified.status, 1)
    assert.equal(
      verified.stderr,
      `strongroom: archive chain ${tenants.archive} fails at record 5: checkpoint 5 is signed by a key that is not trusted (archive-checkpoint-2)\n`,
    )
  })

  test('a chained record forged after the newest checkpoint is reported as an unsealed tail', async () => {
    const { db, close } = await database()
    let forged: number
    try {
      forged = await forgeAuditTail(db, tenants.tail)
    } finally {
      await close()
    }
    const verified = cli.run([
      'audit',
      'verify',
      '--keys',
      paths().keys,
      '--tenant',
      tenants.tail,
      '--witness',
      paths().witness,
    ])
    assert.equal(verified.status, 3)
    assert.deepEqual(
      (JSON.parse(verified.stdout) as { ok: boolean; records: number; unsealed: number }[]).map((r) => [
        r.ok,
        r.records,
        r.unsealed,
      ]),
      [[true, forged, 1]],
    )
    assert.equal(
      verified.stderr,
      `strongroom: audit chain ${tenants.tail} has 1 unsealed records from record ${forged}: no checkpoint covers them yet\n`,
    )
  })
})
