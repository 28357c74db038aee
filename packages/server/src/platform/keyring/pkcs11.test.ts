import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createPublicKey, verify } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { createLocalJWKSet, exportJWK, jwtVerify } from 'jose'
import { sql } from 'kysely'
import { cliHarness } from '../../testing/cli.ts'
import { createTestBank, startTestServer, type TestServer } from '../../testing/harness.ts'
import { needsSoftHsm } from '../../testing/requirements.ts'
import { type SoftHsmToken, softHsmToken } from '../../testing/softhsm.ts'
import { type ConfigError, loadConfig } from '../config.ts'
import { openDatabase } from '../db/database.ts'
import { signJwt } from './jws.ts'
import { IN_TOKEN, Pkcs11Provider } from './pkcs11-provider.ts'
import { openSigningKey, rotateSigningKey, type SigningKeyPurpose } from './signing-keys.ts'

const require = createRequire(import.meta.url)

/**
 * What a thief with the token's PIN (but not the HSM) gets out of the token, from another process: the value of every
 * secret and private key it holds, or the error the token answers with. An HSM answers CKR_ATTRIBUTE_SENSITIVE.
 */
function readKeyValuesOutOfToken(token: SoftHsmToken): string[] {
  const script = `
    const pkcs11js = require(${JSON.stringify(require.resolve('pkcs11js'))})
    const p = new pkcs11js.PKCS11(); p.load(${JSON.stringify(token.module)}); p.C_Initialize()
    const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === ${JSON.stringify(token.tokenLabel)})
    const session = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION)
    p.C_Login(session, pkcs11js.CKU_USER, require('node:fs').readFileSync(${JSON.stringify(token.pinFile)}, 'utf8').trim())
    const answers = []
    for (const cls of [pkcs11js.CKO_SECRET_KEY, pkcs11js.CKO_PRIVATE_KEY]) {
      p.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_CLASS, value: cls }])
      const handles = p.C_FindObjects(session, 10000)
      p.C_FindObjectsFinal(session)
      for (const h of handles) {
        try { p.C_GetAttributeValue(session, h, [{ type: pkcs11js.CKA_VALUE }]); answers.push('VALUE READ') }
        catch (e) { answers.push(e.message.split(':')[0]) }
      }
    }
    console.log(JSON.stringify(answers))`
  const result = spawnSync(process.execPath, ['-e', script], {
    env: { ...process.env, ...token.env },
    encoding: 'utf8',
  })
  assert.equal(result.status, 0, result.stderr)
  return JSON.parse(result.stdout)
}

/** Every file under a directory, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    return entry.isDirectory() ? filesUnder(full) : [full]
  })
}

/** How private key material looks when written out: PKCS#8 DER (Ed25519, P-256), PEM, a private JWK. */
const PRIVATE_KEY_SHAPES = [
  Buffer.from('302e020100300506032b657004220420', 'hex'),
  Buffer.from('020100301306072a8648ce3d020106082a8648ce3d030107', 'hex'),
  Buffer.from('PRIVATE KEY-----'),
  Buffer.from('"d":"'),
]

/** A needle in the forms it may be stored in: raw bytes, hex (PostgreSQL's bytea text), base64 and base64url. */
function forms(needle: Buffer): Buffer[] {
  return [
    needle,
    Buffer.from(needle.toString('hex')),
    Buffer.from(needle.toString('base64')),
    Buffer.from(needle.toString('base64url')),
  ]
}

describe('PKCS#11 key provider (SoftHSM2)', { skip: needsSoftHsm() }, () => {
  let token: SoftHsmToken
  let server: TestServer
  const cli = cliHarness()

  before(async () => {
    token = softHsmToken()
    server = await startTestServer(token.config)
  })
  after(() => server?.stop())

  test('the settings name a library, a token and a PIN file, or the configuration is refused', () => {
    assert.throws(
      () => loadConfig({ STRONGROOM_KEY_PROVIDER: 'pkcs11' }),
      (error: ConfigError) => error.setting === 'STRONGROOM_PKCS11_MODULE',
    )
    const named = { STRONGROOM_KEY_PROVIDER: 'pkcs11', STRONGROOM_PKCS11_MODULE: token.module }
    assert.throws(
      () => loadConfig({ ...named, STRONGROOM_PKCS11_PIN_FILE: token.pinFile }),
      (error: ConfigError) => error.setting === 'STRONGROOM_PKCS11_TOKEN_LABEL',
    )
    assert.throws(
      () => loadConfig({ ...named, STRONGROOM_PKCS11_TOKEN_LABEL: 'x' }),
      (error: ConfigError) => error.setting === 'STRONGROOM_PKCS11_PIN_FILE',
    )
    assert.equal(loadConfig({ ...token.env }).keyProvider, 'pkcs11')
    // Production needs no key file with an HSM, but a PIN file only its owner reads.
    const production = {
      ...token.env,
      STRONGROOM_MODE: 'production',
      DATABASE_URL: 'postgres://db/strongroom',
      STRONGROOM_PUBLIC_URL: 'https://chat.bank.example',
    }
    assert.equal(loadConfig(production).keyProvider, 'pkcs11')
    const looseCopy = path.join(token.dir, 'pin-readable')
    writeFileSync(looseCopy, readFileSync(token.pinFile), { mode: 0o644 })
    assert.throws(
      () => loadConfig({ ...production, STRONGROOM_PKCS11_PIN_FILE: looseCopy }),
      (error: ConfigError) =>
        error.setting === 'STRONGROOM_PKCS11_PIN_FILE' && /not be readable or writable by group/.test(error.message),
    )
  })

  test('keys init and keys rotate work on the token: a new KEK in the token, every key re-wrapped under it', async () => {
    const run = (args: string[]) => {
      const result = cli.run(args, token.env)
      assert.equal(result.status, 0, result.stderr)
      return JSON.parse(result.stdout)
    }
    const init = run(['keys', 'init'])
    assert.equal(init.keyProvider, 'pkcs11')
    assert.match(init.kekId, /^hsm-kek-\d+$/)
    const tenant = run(['tenant', 'create', '--name', 'HSM Bank'])
    run(['customer', 'create', '--tenant', tenant.id, '--ref', 'R-1', '--name', 'Before'])
    const rotated = run(['keys', 'rotate', '--data-keys', '--signing-keys'])
    assert.notEqual(rotated.kekId, init.kekId)
    assert.equal(rotated.dataKeysRotated, 1)
    assert.ok(rotated.rewrapped >= 2, 'the old data key and the index key moved to the new KEK')
    assert.ok(rotated.signingKeys.includes(`consent-receipt-${tenant.id}-1`))
    const database = await openDatabase(loadConfig({}, { dataDir: cli.dir, databaseUrl: cli.database.url }))
    try {
      const keks = await database.db.selectFrom('tenant_keys').select('kek_id').distinct().execute()
      assert.deepEqual(keks, [{ kek_id: rotated.kekId }])
      const signing = await database.db.selectFrom('signing_keys').select('kek_id').distinct().execute()
      assert.deepEqual(signing, [{ kek_id: IN_TOKEN }])
    } finally {
      await database.close()
    }
    assert.equal(existsSync(path.join(cli.dir, 'keyring.json')), false, 'no key file was written')
    // The archive's own KEKs, in the token as objects of their own: made, then rotated, never a file.
    const archiveInit = run(['keys', 'init', '--archive'])
    assert.deepEqual(archiveInit, { keyProvider: 'pkcs11', kekId: 'hsm-archive-kek-1' })
    assert.equal(run(['keys', 'rotate', '--archive']).archiveKekId, 'hsm-archive-kek-2')
    assert.equal(existsSync(path.join(cli.dir, 'archive-keyring.json')), false, 'no archive key file was written')
    const afterRotation = cli.run(
      ['customer', 'create', '--tenant', tenant.id, '--ref', 'R-2', '--name', 'After'],
      token.env,
    )
    assert.equal(afterRotation.status, 0, afterRotation.stderr)
  })

  test('a wrong PIN, an unknown token and a token without a KEK are refused with what to check', async () => {
    await assert.rejects(
      Pkcs11Provider.open(
        { module: token.module, tokenLabel: 'no-such-token', pinFile: token.pinFile },
        { create: true },
      ),
      /no token labelled "no-such-token"/,
    )
    await assert.rejects(
      Pkcs11Provider.open({ module: token.module, slot: 987654321, pinFile: token.pinFile }, { create: true }),
      /no initialized token in slot 987654321/,
    )
    await assert.rejects(
      Pkcs11Provider.open(
        { module: token.module, tokenLabel: token.tokenLabel, pinFile: path.join(token.dir, 'absent') },
        { create: true },
      ),
      /the PIN file .* cannot be read/,
    )
  })

  test('data keys are wrapped by AES-GCM in the token, bound to their associated data', async () => {
    const provider = server.keyProvider
    assert.equal(provider.name, 'pkcs11')
    const dataKey = Buffer.alloc(32, 7)
    const aad = Buffer.from('strongroom:tenant-key:ten_x:data:1')
    const { kekId, wrapped } = await provider.wrap(dataKey, aad)
    assert.match(kekId, /^hsm-kek-\d+$/)
    assert.equal(wrapped.length, 12 + 32 + 16)
    assert.ok(!wrapped.includes(dataKey))
    assert.deepEqual(await provider.unwrap(kekId, wrapped, aad), dataKey)
    await assert.rejects(provider.unwrap(kekId, wrapped, Buffer.from('strongroom:tenant-key:ten_y:data:1')))
    const tampered = Buffer.from(wrapped)
    tampered[20] = (tampered[20] as number) ^ 1
    await assert.rejects(provider.unwrap(kekId, tampered, aad))
    await assert.rejects(provider.unwrap('hsm-kek-999', wrapped, aad), /hsm-kek-999 is not in the token/)
  })

  test('a KEK rotated by another node is found without a restart; the new one wraps from then on', async () => {
    const otherNode = await Pkcs11Provider.open(
      { module: token.module, tokenLabel: token.tokenLabel, pinFile: token.pinFile },
      { create: false },
    )
    try {
      const aad = Buffer.from('aad')
      const before = await server.keyProvider.currentKekId()
      const rotated = await otherNode.rotate()
      assert.notEqual(rotated, before)
      const { kekId, wrapped } = await otherNode.wrap(Buffer.alloc(32, 1), aad)
      assert.equal(kekId, rotated)
      assert.deepEqual(await server.keyProvider.unwrap(kekId, wrapped, aad), Buffer.alloc(32, 1))
      assert.equal(await server.keyProvider.currentKekId(), rotated)
    } finally {
      await otherNode.close()
    }
  })

  test('a KEK missing from the token makes the process read the token afresh; every key it held still works', async () => {
    // Some libraries keep a per-process view of the token that can miss an object another process made (SoftHSM2 2.6
    // does, when it reads an object while its creator is still writing it): a missing KEK re-initializes the library.
    const aad = Buffer.from('aad')
    const receipts = await openSigningKey(server.ctx.db, server.keyProvider, 'consent-receipt')
    const { kekId, wrapped } = await server.keyProvider.wrap(Buffer.alloc(32, 3), aad)
    const otherNode = await Pkcs11Provider.open(
      { module: token.module, tokenLabel: token.tokenLabel, pinFile: token.pinFile },
      { create: false },
    )
    try {
      await assert.rejects(server.keyProvider.unwrap('hsm-kek-998', wrapped, aad), /hsm-kek-998 is not in the token/)
      // Sessions and handles from before the re-initialization are gone; each provider opens its own again.
      assert.deepEqual(await server.keyProvider.unwrap(kekId, wrapped, aad), Buffer.alloc(32, 3))
      assert.deepEqual(await otherNode.unwrap(kekId, wrapped, aad), Buffer.alloc(32, 3))
      const message = Buffer.from('signed after the token was read afresh')
      const signature = receipts.sign(message)
      assert.ok(
        receipts.algorithm === 'ed25519'
          ? verify(null, message, receipts.publicKey, signature)
          : verify('sha256', message, { key: receipts.publicKey, dsaEncoding: 'ieee-p1363' }, signature),
      )
      await server.keyProvider.wrap(Buffer.alloc(32, 4), aad)
    } finally {
      await otherNode.close()
    }
  })

  test('every signing key signs inside the token, with the algorithm its JWKS names', async () => {
    const purposes: SigningKeyPurpose[] = [
      'audit-checkpoint',
      'archive-checkpoint',
      'mls-credential',
      'consent-receipt',
      'integrity-token',
      'pin-set',
      'wipe-command',
    ]
    for (const purpose of purposes) {
      const key = await openSigningKey(server.ctx.db, server.keyProvider, purpose)
      const row = await server.ctx.db
        .selectFrom('signing_keys')
        .selectAll()
        .where('id', '=', key.id)
        .executeTakeFirstOrThrow()
      assert.equal(row.kek_id, IN_TOKEN, purpose)
      assert.equal(row.wrapped_private_key.length, 16, 'only the token object’s id is stored')
      const message = Buffer.from(`signed for ${purpose}`)
      const signature = key.sign(message)
      const publicKey = createPublicKey({ key: Buffer.from(row.public_key), format: 'der', type: 'spki' })
      if (key.algorithm === 'ed25519') {
        assert.ok(verify(null, message, publicKey, signature), purpose)
        assert.ok(!verify(null, Buffer.from('something else'), publicKey, signature))
      }
      // A JWT as the server issues them verifies with the JWK the server publishes, under the alg it names.
      const jwk = { ...(await exportJWK(key.publicKey)), kid: key.id }
      const jwt = signJwt(key, 'test+jwt', { sub: purpose })
      const verified = await jwtVerify(jwt, createLocalJWKSet({ keys: [jwk] }))
      assert.equal(verified.protectedHeader.alg, key.algorithm === 'ed25519' ? 'EdDSA' : 'ES256')
      assert.equal(verified.payload.sub, purpose)
    }
    const next = await rotateSigningKey(server.ctx.db, server.keyProvider, 'consent-receipt', 'ten_hsm')
    const rotated = await openSigningKey(server.ctx.db, server.keyProvider, 'consent-receipt', 'ten_hsm')
    assert.equal(rotated.id, next)
  })

  test('a row pointing at another key of the token is refused: the token must sign for the stored public key', async () => {
    const receipt = await openSigningKey(server.ctx.db, server.keyProvider, 'consent-receipt')
    const audit = await server.ctx.db
      .selectFrom('signing_keys')
      .selectAll()
      .where('purpose', '=', 'audit-checkpoint')
      .executeTakeFirstOrThrow()
    const receiptRow = await server.ctx.db
      .selectFrom('signing_keys')
      .selectAll()
      .where('id', '=', receipt.id)
      .executeTakeFirstOrThrow()
    await assert.rejects(
      server.keyProvider.signer(
        'p256',
        {
          kekId: IN_TOKEN,
          privateKey: Buffer.from(receiptRow.wrapped_private_key),
          publicKey: audit.public_key as Buffer,
        },
        Buffer.alloc(0),
      ),
      /does not match the stored public key/,
    )
  })

  test('no key can be read out of the token, even by whoever holds its PIN', async () => {
    const answers = readKeyValuesOutOfToken(token)
    assert.ok(answers.length >= 8, `the KEKs and signing keys are there (${answers.length})`)
    assert.deepEqual(new Set(answers), new Set(['CKR_ATTRIBUTE_SENSITIVE']))
  })

  test('no private key material is in the database or on disk outside the token', async () => {
    const bank = await createTestBank(server)
    await server.flushAudit()
    assert.equal(existsSync(path.join(server.dataDir, 'keyring.json')), false, 'no key file is written')
    // The archive's KEK is in the token too, apart from the live keyring's: its data key is wrapped by it.
    await server.archiveMember?.ensureTenant(bank.tenantId)
    assert.equal(existsSync(path.join(server.dataDir, 'archive-keyring.json')), false, 'no archive key file either')
    const archiveDataKey = await server.ctx.db
      .selectFrom('archive_member_state')
      .select('sealed')
      .where('tenant_id', '=', bank.tenantId)
      .where('name', '=', 'archive-data-key')
      .executeTakeFirstOrThrow()
    assert.match(JSON.parse(Buffer.from(archiveDataKey.sealed).toString()).kekId, /^hsm-archive-kek-\d+$/)
    // The data keys leave the token unwrapped, into this process's memory only: find them wherever they are written.
    const dataKeys: Buffer[] = []
    for (const row of await server.ctx.db.selectFrom('tenant_keys').selectAll().execute()) {
      const aad = Buffer.from(`strongroom:tenant-key:${row.tenant_id}:${row.purpose}:${row.version}`)
      dataKeys.push(await server.keyProvider.unwrap(row.kek_id, Buffer.from(row.wrapped_key), aad))
    }
    assert.ok(dataKeys.length >= 2)
    const needles = [...PRIVATE_KEY_SHAPES, ...dataKeys.flatMap(forms)]

    // The whole database, every row of every table as text (bytea as hex).
    const { rows: tables } = await sql<{ name: string }>`
      select table_name as name from information_schema.tables
      where table_schema = current_schema() and table_type = 'BASE TABLE'`.execute(server.ctx.db)
    assert.ok(tables.length > 30)
    let dump = ''
    for (const { name } of tables) {
      const { rows } = await sql<{ row: string }>`select t::text as row from ${sql.table(name)} t`.execute(
        server.ctx.db,
      )
      dump += rows.map((r) => r.row).join('\n')
    }
    assert.ok(dump.includes(bank.tenantId), 'the dump holds what the bank stored')
    const dumped = Buffer.from(dump)
    for (const needle of needles) assert.ok(!dumped.includes(needle), `the database holds ${needle.toString('hex')}`)

    // The data directory.
    for (const file of filesUnder(server.dataDir)) {
      if (!statSync(file).isFile()) continue
      const content = readFileSync(file)
      for (const needle of needles) assert.ok(!content.includes(needle), `${file} holds key material`)
    }
  })
})
