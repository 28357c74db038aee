import { closeSync, createWriteStream, mkdtempSync, openSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { rewrapArchiveKeys } from '../archive/archive-keys.ts'
import { rewrapArchiveMemberKeys } from '../archive/archive-member.ts'
import { exportCase } from '../archive/export.ts'
import { archiveChains, verifyArchiveChain } from '../archive/verify.ts'
import { operator, recordAudit, SYSTEM_CHAIN } from '../audit/events.ts'
import { auditChains, type ChainVerification, verifyAuditChain } from '../audit/verify.ts'
import { totpEncryptedColumns } from '../auth/totp.ts'
import { channelConfigEncryptedColumns } from '../channels/channel-config.ts'
import { envelopeEncryptedColumns } from '../channels/envelope.ts'
import { channelIdentityEncryptedColumns } from '../channels/identities.ts'
import { consentEncryptedColumns } from '../consent/consents.ts'
import { exportCustomerData } from '../data-subject/export-customer.ts'
import { noteEncryptedColumns } from '../desk/notes.ts'
import { createCustomer, customerEncryptedColumns, E164_PATTERN } from '../identity/customers.ts'
import { issueEnrolmentCode } from '../identity/enrolment-codes.ts'
import { PinSetRotationError, pinSetKeys, publishPinSet } from '../integrity/pin-sets.ts'
import { runtimeSecretEncryptedColumns } from '../integrity/runtime-secrets.ts'
import type { Bus } from '../platform/bus/bus.ts'
import { openBus } from '../platform/bus/open-bus.ts'
import { archiveKeyFileOf, type Config, ConfigError, loadConfig } from '../platform/config.ts'
import { type Db, migrateToLatest, openDatabase } from '../platform/db/database.ts'
import {
  checkpointKeysJwks,
  readTrustedKeys,
  type TrustedKey,
  TrustedKeysError,
  trustedKeysFor,
} from '../platform/hash-chain/trusted-keys.ts'
import type { ChainTrust } from '../platform/hash-chain/walker.ts'
import { verifyWitnessLog, WitnessFileError } from '../platform/hash-chain/witness.ts'
import { type AccessTableRow, formatAccessTable } from '../platform/http/access-rule.ts'
import { Problem } from '../platform/http/problems.ts'
import { isScope, type Role, roles, type Scope } from '../platform/http/roles.ts'
import type { KeyProvider } from '../platform/keyring/key-provider.ts'
import { Keyring } from '../platform/keyring/keyring.ts'
import { openArchiveKeyProvider, openKeyProvider } from '../platform/keyring/open-provider.ts'
import { RetireRefused, reencryptTenant, retireDataKey } from '../platform/keyring/reencrypt.ts'
import {
  openSigningKey,
  ownedVerificationKeys,
  rewrapSigningKeys,
  rotateSigningKey,
  type SigningKeyPurpose,
} from '../platform/keyring/signing-keys.ts'
import { createLogger } from '../platform/logging.ts'
import { startServer } from '../server.ts'
import { createStaff, findStaff, issueStaffToken } from '../tenancy/staff.ts'
import { changeStaffActive, endStaffToken } from '../tenancy/staff-lifecycle.ts'
import { createTenant, findTenant, listTenants } from '../tenancy/tenants.ts'
import { ensureWebBuild } from '../web/build-on-start.ts'

const usage = `usage: strongroom <command>

  start                              serve HTTP and WebSocket (npm start)
  routes                             print the access table: every route (dev mode's included) and who may call it,
                                     as each module declares it beside the handler
  migrate                            apply pending database migrations and exit
  pins set --host H --pin P [--pin P2] [--days 30] [--force]
                                     publish a signed pin set pinning host H to these SPKI SHA-256 pins (base64);
                                     the new pins must keep one of the host's current ones unless --force
  pins keys                          print the public keys apps verify pin sets with (ship them in the app)
  keys init [--archive]              create the key file (production: do this once, then chmod 600 is kept), or
                                     with STRONGROOM_KEY_PROVIDER=pkcs11 the key-encryption key in the token;
                                     with --archive, the archive member's own key file
  keys rotate [--data-keys] [--signing-keys]
                                     new key-encryption key; re-wrap every tenant data key (servers may run);
                                     with --signing-keys, new MLS credential, integrity-token, pin-set and
                                     wipe-command keys, and each bank's new receipt and checkpoint keys (old ones
                                     stay verifiable)
  keys rotate --archive              new archive key-encryption key; re-wrap every archive data key under it
  keys reencrypt [--tenant ID]       move every encrypted value to its tenant's newest data key (servers may run;
                                     progress on stderr); after \`keys rotate --data-keys\`
  keys retire --tenant ID --version N
                                     erase an old data key version; refused while it is the newest or still seals
                                     any value (run keys reencrypt first)
  keys export-public [--tenant ID]   print the audit and archive checkpoint public keys as a JWKS, each bank's
                                     marked with its id (tid): keep it outside the database (again after each
                                     rotation and each new tenant) and give it to audit/archive verify; with
                                     --tenant, only that bank's
  tenant create --name NAME          create a tenant (a bank) with its own data keys
  tenant list                        list tenants
  staff token --tenant ID --name NAME [--role ROLE] [--ttl 8h] [--scopes a,b]
                                     issue an API token (creates the staff member with --role if new)
  staff revoke-token --tenant ID --token ID
                                     revoke one staff token: refused at once, its streams closed on every node
  staff deactivate --tenant ID --name NAME
                                     end every token and console session of a staff member on every node; no
                                     token is issued to them until \`staff activate\`
  staff activate --tenant ID --name NAME
                                     make a deactivated staff member active again (they need new tokens)
  audit verify --keys JWKS [--tenant ID] [--witness FILE]
                                     recompute the audit chains and their signed checkpoints, trusting only the
                                     keys in JWKS and checking every checkpoint the witness file holds
                                     (STRONGROOM_WITNESS_FILE by default); name the first record that fails (exit
                                     status 1), or the records after the newest checkpoint, unsealed (exit status 3)
  archive verify --keys JWKS [--tenant ID] [--witness FILE]
                                     the same for the archive chains, with their content hashes (no archive key
                                     needed)
  witness verify --keys JWKS [--witness FILE]
                                     check a witness file by itself, without the database: every tree head signed
                                     by a trusted key, no fork, and each proven (RFC 6962 consistency) to extend the
                                     one before; exit status 1 names the first that fails
  archive export --tenant ID (--conversation ID | --customer ID) [--from ISO] [--to ISO] --out FILE
                                     export a case as a signed bundle (JSON lines, the last the signed manifest)
  customer create --tenant ID --ref REF --name NAME [--phone E164]
                                     register a customer (REF is the bank's own customer id; the phone number
                                     matches their texts and receives their SMS codes)
  customer export --tenant ID --customer ID --out FILE
                                     export everything held about a customer (a data subject access request) as
                                     one JSON file; needs the archive key file; never overwrites a file
  enrolment-code --tenant ID --customer ID
                                     issue a single-use code with which one device of the customer enrols

Configuration comes from the environment; see the README.`

function out(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
}

/** A progress bar on stderr for long runs, when a person is watching. */
function progress(label: string, done: number, total: number): void {
  if (!process.stderr.isTTY || total === 0) return
  const width = 30
  const filled = Math.round((done / total) * width)
  const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`
  process.stderr.write(`\r${label} [${bar}] ${done}/${total}${done >= total ? '\n' : ''}`)
}

function parseTtl(value: string): number {
  const match = /^(\d+)([smhd])$/.exec(value)
  if (!match) throw new UsageError('--ttl must look like 30m, 8h or 7d')
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[match[2] as 's' | 'm' | 'h' | 'd']
  return Number(match[1]) * unit
}

class UsageError extends Error {}

/** Signing keys that stay the deployment's; receipts and checkpoints are signed by each bank's own. */
const deploymentPurposes = ['mls-credential', 'integrity-token', 'pin-set', 'wipe-command'] as const

/** Who has evidence keys of their own, and for what: every bank, and the system's own audit chain. */
async function evidenceKeyOwners(db: Db): Promise<[string, SigningKeyPurpose[]][]> {
  const banks = (await listTenants({ db })).map((t): [string, SigningKeyPurpose[]] => [
    t.id,
    ['consent-receipt', 'audit-checkpoint', 'archive-checkpoint'],
  ])
  return [...banks, [SYSTEM_CHAIN, ['audit-checkpoint']]]
}

/** Every column the keyring seals, from the capabilities that own them: what `keys reencrypt` and `keys retire` walk. */
const encryptedColumns = [
  ...customerEncryptedColumns,
  ...noteEncryptedColumns,
  ...totpEncryptedColumns,
  ...runtimeSecretEncryptedColumns,
  ...channelIdentityEncryptedColumns,
  ...channelConfigEncryptedColumns,
  ...envelopeEncryptedColumns,
  ...consentEncryptedColumns,
]

/** Tells the running nodes, over the bus, that these tenants have a new data key: they encrypt with it at once. */
async function announceDataKeyRotations(config: Config, tenants: { id: string }[]): Promise<void> {
  const bus = await openBus(config)
  try {
    for (const tenant of tenants) Keyring.announceRotation(bus, tenant.id)
  } finally {
    await bus.close()
  }
}

type Storage = { keyring: Keyring; db: Db; provider: KeyProvider }

/**
 * Storage and the bus, for a command whose effect the running nodes must hear of at once (closing streams): the
 * publication leaves before the bus closes.
 */
async function withStorageAndBus<T>(config: Config, work: (ctx: { db: Db; bus: Bus }) => Promise<T>): Promise<T> {
  return withStorage(config, async ({ db }) => {
    const bus = await openBus(config)
    try {
      return await work({ db, bus })
    } finally {
      await bus.close()
    }
  })
}

/** Opens what an administrative command works on, migrated, and closes it afterwards. */
async function withStorage<T>(config: Config, work: (storage: Storage) => Promise<T>): Promise<T> {
  const provider = await openKeyProvider(config, { create: config.mode === 'dev' })
  try {
    const database = await openDatabase(config)
    try {
      await migrateToLatest(database.db)
      return await work({ keyring: new Keyring(database.db, provider), db: database.db, provider })
    } finally {
      await database.close()
    }
  } finally {
    await provider.close()
  }
}

/**
 * Verifies one tenant's chain or every chain of a kind (audit or archive) against keys and a witness from outside the
 * database, printing the results and a progress bar. Names the first failing record on stderr and sets exit status 1;
 * otherwise names records no checkpoint covers yet and sets exit status 3.
 */
async function verifyChains(
  config: Config,
  label: 'audit' | 'archive',
  options: { tenant?: string | undefined; keys?: string | undefined; witness?: string | undefined },
  how: {
    chains: (db: Db) => Promise<string[]>
    verify: (
      db: Db,
      tenantId: string,
      trust: ChainTrust,
      onProgress: (done: number, total: number) => void,
    ) => Promise<ChainVerification>
  },
): Promise<void> {
  if (!options.keys) {
    throw new UsageError(
      `${label} verify needs --keys JWKS (from \`strongroom keys export-public\`): keys read from the database it verifies prove nothing`,
    )
  }
  const trusted = readTrustedKeys(options.keys)
  const witnessFile = options.witness ?? config.witnessFile
  const results = await withStorage(config, async ({ db }) => {
    const verified = []
    for (const chain of options.tenant ? [options.tenant] : await how.chains(db)) {
      // Each bank's chain against that bank's keys only: another bank's genuine key proves nothing here.
      const trust = { keys: trustedKeysFor(trusted, chain), witnessFile }
      verified.push(await how.verify(db, chain, trust, (done, total) => progress(`${label} ${chain}`, done, total)))
    }
    return verified
  })
  out(results)
  const failed = results.find((r) => !r.ok)
  if (failed?.failure) {
    process.stderr.write(
      `strongroom: ${label} chain ${failed.tenantId} fails at record ${failed.failure.seq}: ${failed.failure.reason}\n`,
    )
    process.exitCode = 1
    return
  }
  const unsealed = results.find((r) => r.unsealed > 0)
  if (unsealed) {
    const first = unsealed.records - unsealed.unsealed + 1
    process.stderr.write(
      `strongroom: ${label} chain ${unsealed.tenantId} has ${unsealed.unsealed} unsealed records from record ${first}: no checkpoint covers them yet\n`,
    )
    process.exitCode = 3
  }
}

/**
 * The access table the server assembles from its modules: a dev-mode server, in memory, in a directory of its own
 * (neither the environment's database nor ./strongroom-data is touched), started, read and stopped.
 */
async function assembledAccessTable(): Promise<readonly AccessTableRow[]> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'strongroom-routes-'))
  try {
    const config = loadConfig(
      {},
      { mode: 'dev', devSeed: false, port: 0, host: '127.0.0.1', dataDir, logLevel: 'silent' },
    )
    const server = await startServer(config, { inMemoryDatabase: true })
    await server.close()
    return server.accessTable
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      tenant: { type: 'string' },
      role: { type: 'string' },
      ttl: { type: 'string' },
      token: { type: 'string' },
      scopes: { type: 'string' },
      'data-keys': { type: 'boolean' },
      'signing-keys': { type: 'boolean' },
      archive: { type: 'boolean' },
      host: { type: 'string' },
      pin: { type: 'string', multiple: true },
      days: { type: 'string' },
      force: { type: 'boolean' },
      ref: { type: 'string' },
      phone: { type: 'string' },
      customer: { type: 'string' },
      conversation: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      out: { type: 'string' },
      keys: { type: 'string' },
      witness: { type: 'string' },
      version: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  const command = positionals.join(' ')
  if (values.help || command === '' || command === 'help') {
    process.stdout.write(`${usage}\n`)
    return
  }
  if (command === 'routes') {
    process.stdout.write(`${formatAccessTable(await assembledAccessTable())}\n`)
    return
  }
  const config = loadConfig(process.env, {}, { creatingKeyFiles: command === 'keys init' })
  switch (command) {
    case 'start': {
      await ensureWebBuild(config, createLogger(config.logLevel))
      const server = await startServer(config)
      let stopping = false
      const stop = (signal: string) => {
        if (stopping) return
        stopping = true
        server.ctx.log.info({ signal }, 'shutting down')
        setTimeout(() => process.exit(1), 25_000).unref()
        server.close().then(
          () => process.exit(0),
          () => process.exit(1),
        )
      }
      process.on('SIGTERM', () => stop('SIGTERM'))
      process.on('SIGINT', () => stop('SIGINT'))
      return
    }
    case 'migrate': {
      const database = await openDatabase(config)
      try {
        out({ applied: await migrateToLatest(database.db) })
      } finally {
        await database.close()
      }
      return
    }
    case 'keys init': {
      // The archive member's key file is separate: its keys never sit with the live keyring's.
      if (values.archive) {
        const archiveKek = await openArchiveKeyProvider(config, { create: true })
        const kekId = await archiveKek.currentKekId()
        await archiveKek.close()
        out(
          config.archiveKeyProvider === 'pkcs11'
            ? { keyProvider: 'pkcs11', kekId }
            : { keyFile: archiveKeyFileOf(config) },
        )
        return
      }
      const provider = await openKeyProvider(config, { create: true })
      const kekId = await provider.currentKekId()
      await provider.close()
      out(config.keyProvider === 'pkcs11' ? { keyProvider: 'pkcs11', kekId } : { keyFile: config.keyFile, kekId })
      return
    }
    case 'keys rotate': {
      if (values.archive) {
        const result = await withStorage(config, async ({ db }) => {
          const archiveKek = await openArchiveKeyProvider(config, { create: false })
          const kekId = await archiveKek.rotate()
          const rewrapped = (await rewrapArchiveKeys(db, archiveKek)) + (await rewrapArchiveMemberKeys(db, archiveKek))
          await recordAudit(db, {
            tenantId: SYSTEM_CHAIN,
            actor: operator,
            action: 'archive.keys.rotate',
            outcome: 'success',
            details: { kekId, rewrapped },
          })
          return { archiveKekId: kekId, rewrapped }
        })
        out(result)
        return
      }
      const result = await withStorage(config, async ({ keyring, db, provider }) => {
        const kekId = await provider.rotate()
        let dataKeysRotated = 0
        if (values['data-keys']) {
          for (const tenant of await listTenants({ db })) {
            await keyring.rotateDataKey(tenant.id)
            dataKeysRotated++
          }
        }
        if (dataKeysRotated > 0) await announceDataKeyRotations(config, await listTenants({ db }))
        const rewrapped = (await keyring.rewrapAll()) + (await rewrapSigningKeys(db, provider))
        const signingKeys: string[] = []
        if (values['signing-keys']) {
          for (const purpose of deploymentPurposes) signingKeys.push(await rotateSigningKey(db, provider, purpose))
          for (const [tenantId, purposes] of await evidenceKeyOwners(db)) {
            for (const purpose of purposes) signingKeys.push(await rotateSigningKey(db, provider, purpose, tenantId))
          }
        }
        await recordAudit(db, {
          tenantId: SYSTEM_CHAIN,
          actor: operator,
          action: 'keys.rotate',
          outcome: 'success',
          details: { kekId, rewrapped, dataKeysRotated, signingKeys },
        })
        return { kekId, rewrapped, dataKeysRotated, signingKeys }
      })
      out(result)
      return
    }
    case 'keys reencrypt': {
      const result = await withStorage(config, async ({ db, keyring }) => {
        const tenants = values.tenant ? [values.tenant] : (await listTenants({ db })).map((t) => t.id)
        const reencrypted: Record<string, number> = {}
        for (const tenantId of tenants) {
          if (!(await findTenant({ db }, tenantId))) throw new UsageError(`no tenant ${tenantId}`)
          reencrypted[tenantId] = await reencryptTenant(db, keyring, tenantId, encryptedColumns, (done, total) =>
            progress(`reencrypt ${tenantId}`, done, total),
          )
          await recordAudit(db, {
            tenantId,
            actor: operator,
            action: 'keys.reencrypt',
            outcome: 'success',
            details: { dataKeyVersion: await keyring.currentDataKeyVersion(tenantId), values: reencrypted[tenantId] },
          })
        }
        return { reencrypted }
      })
      out(result)
      return
    }
    case 'keys retire': {
      const version = Number(values.version)
      if (!values.tenant || !Number.isInteger(version) || version < 1) {
        throw new UsageError('keys retire needs --tenant ID and --version N (a data key version)')
      }
      const tenantId = values.tenant
      await withStorage(config, async ({ db, keyring }) => {
        if (!(await findTenant({ db }, tenantId))) throw new UsageError(`no tenant ${tenantId}`)
        try {
          await retireDataKey(db, keyring, tenantId, version, encryptedColumns)
        } catch (error) {
          if (!(error instanceof RetireRefused)) throw error
          await recordAudit(db, {
            tenantId,
            actor: operator,
            action: 'keys.retire',
            outcome: 'denied',
            details: { version, reason: error.message },
          })
          throw error
        }
        await recordAudit(db, {
          tenantId,
          actor: operator,
          action: 'keys.retire',
          outcome: 'success',
          details: { version },
        })
      })
      out({ tenantId, retired: version })
      return
    }
    case 'pins set': {
      if (!values.host || !values.pin?.length) throw new UsageError('pins set needs --host and at least one --pin')
      const input = {
        host: values.host,
        pins: values.pin,
        days: Number(values.days ?? 30),
        force: values.force ?? false,
      }
      if (!Number.isInteger(input.days) || input.days < 1 || input.days > 400) {
        throw new UsageError('--days is a whole number of days from 1 to 400')
      }
      const set = await withStorage(config, async ({ db, provider }) => {
        try {
          const published = await publishPinSet(db, await openSigningKey(db, provider, 'pin-set'), input)
          await recordAudit(db, {
            tenantId: SYSTEM_CHAIN,
            actor: operator,
            action: 'pins.publish',
            outcome: 'success',
            details: { version: published.version, host: input.host, pins: input.pins, forced: input.force },
          })
          return published
        } catch (error) {
          if (error instanceof PinSetRotationError) throw new UsageError(error.message)
          throw error
        }
      })
      out(set)
      return
    }
    case 'keys export-public': {
      out(
        await withStorage(config, async ({ db, provider }) => {
          // Every bank's checkpoint keys are made now if they are not yet, so that the export holds the keys its
          // chains will be signed with.
          const keys = new Map<string, TrustedKey>()
          for (const [tenantId, purposes] of await evidenceKeyOwners(db)) {
            if (values.tenant && tenantId !== values.tenant) continue
            for (const purpose of purposes) {
              if (purpose === 'consent-receipt') continue
              await openSigningKey(db, provider, purpose, tenantId)
            }
          }
          for (const purpose of ['audit-checkpoint', 'archive-checkpoint'] as const) {
            const owned = await ownedVerificationKeys(db, purpose, values.tenant ? { tenantId: values.tenant } : {})
            for (const [kid, key] of owned) keys.set(kid, key)
          }
          return checkpointKeysJwks(keys)
        }),
      )
      return
    }
    case 'pins keys': {
      out({
        keys: await withStorage(config, async ({ db, provider }) => {
          await openSigningKey(db, provider, 'pin-set')
          return pinSetKeys(db)
        }),
      })
      return
    }
    case 'tenant create': {
      if (!values.name) throw new UsageError('tenant create needs --name')
      const name = values.name
      out(await withStorage(config, ({ db, keyring }) => createTenant({ db, keyring }, name, operator)))
      return
    }
    case 'tenant list': {
      out(await withStorage(config, ({ db }) => listTenants({ db })))
      return
    }
    case 'staff token': {
      const { tenant: tenantId, name } = values
      if (!tenantId || !name) throw new UsageError('staff token needs --tenant and --name')
      if (values.role && !(roles as readonly string[]).includes(values.role)) {
        throw new UsageError(`--role must be one of ${roles.join(', ')}`)
      }
      const scopes = values.scopes?.split(',').map((s) => s.trim())
      const badScope = scopes?.find((s) => !isScope(s))
      if (badScope) throw new UsageError(`unknown scope ${badScope}`)
      const ttlSeconds = parseTtl(values.ttl ?? '8h')
      out(
        await withStorage(config, async ({ db }) => {
          if (!(await findTenant({ db }, tenantId))) throw new UsageError(`no tenant ${tenantId}`)
          let staff = await findStaff({ db }, tenantId, { name })
          if (!staff) {
            if (!values.role) throw new UsageError(`no staff member ${name}: give --role to create one`)
            staff = await createStaff({ db }, tenantId, { name, role: values.role as Role }, operator)
          }
          const issued = await issueStaffToken(
            { db },
            staff,
            { ttlSeconds, scopes: scopes as Scope[] | undefined },
            operator,
          )
          return { staffId: staff.id, role: staff.role, ...issued }
        }),
      )
      return
    }
    case 'staff revoke-token': {
      const { tenant: tenantId, token: tokenId } = values
      if (!tenantId || !tokenId) throw new UsageError('staff revoke-token needs --tenant and --token')
      await withStorageAndBus(config, (ctx) => endStaffToken(ctx, tenantId, { tokenId }, operator))
      out({ revoked: tokenId })
      return
    }
    case 'staff deactivate':
    case 'staff activate': {
      const { tenant: tenantId, name } = values
      if (!tenantId || !name) throw new UsageError(`${command} needs --tenant and --name`)
      out(
        await withStorageAndBus(config, async (ctx) => {
          const staff = await findStaff(ctx, tenantId, { name })
          if (!staff) throw new UsageError(`no staff member ${name} in tenant ${tenantId}`)
          return changeStaffActive(ctx, tenantId, staff.id, command === 'staff activate', operator)
        }),
      )
      return
    }
    case 'audit verify':
    case 'archive verify': {
      const archive = command === 'archive verify'
      await verifyChains(config, archive ? 'archive' : 'audit', values, {
        chains: archive ? archiveChains : auditChains,
        verify: archive ? verifyArchiveChain : verifyAuditChain,
      })
      return
    }
    case 'witness verify': {
      const file = values.witness ?? config.witnessFile
      if (!values.keys || !file) throw new UsageError('witness verify needs --keys JWKS and --witness FILE')
      const result = verifyWitnessLog(file, readTrustedKeys(values.keys))
      out(result)
      if (result.failure) {
        const { chain, treeSize, reason } = result.failure
        process.stderr.write(`strongroom: witness: ${chain}: tree head ${treeSize} ${reason}\n`)
        process.exitCode = 1
      }
      return
    }
    case 'archive export': {
      const { tenant: tenantId, conversation, customer, out: file } = values
      if (!tenantId || !file || Boolean(conversation) === Boolean(customer)) {
        throw new UsageError('archive export needs --tenant, one of --conversation or --customer, and --out')
      }
      const when = (value: string | undefined, name: string) => {
        if (value === undefined) return undefined
        const date = new Date(value)
        if (Number.isNaN(date.getTime())) throw new UsageError(`${name} must be an ISO 8601 date`)
        return date
      }
      const scope = {
        conversationId: conversation,
        customerId: customer,
        from: when(values.from, '--from'),
        to: when(values.to, '--to'),
      }
      const manifest = await withStorage(config, async ({ db, provider }) => {
        const archiveKek = await openArchiveKeyProvider(config, { create: false })
        const signer = await openSigningKey(db, provider, 'archive-checkpoint', tenantId)
        const stream = createWriteStream(file, { flags: 'wx', mode: 0o600 })
        try {
          return await exportCase(
            { db, archiveKek },
            signer,
            tenantId,
            scope,
            operator,
            (line) => new Promise<void>((resolve) => (stream.write(line) ? resolve() : stream.once('drain', resolve))),
            (done, total) => progress('export', done, total),
          )
        } finally {
          await new Promise((resolve) => stream.end(resolve))
        }
      })
      out({ file, records: manifest.records, checkpoint: manifest.checkpoint.treeSize })
      return
    }
    case 'customer create': {
      const { tenant: tenantId, ref, name, phone } = values
      if (!tenantId || !ref || !name) throw new UsageError('customer create needs --tenant, --ref and --name')
      if (phone !== undefined && !new RegExp(E164_PATTERN).test(phone)) {
        throw new UsageError('--phone must be a number in E.164, e.g. +447700900123')
      }
      out(
        await withStorage(config, async ({ db, keyring }) => {
          if (!(await findTenant({ db }, tenantId))) throw new UsageError(`no tenant ${tenantId}`)
          return createCustomer({ db, keyring }, tenantId, { externalRef: ref, displayName: name, phoneNumber: phone })
        }),
      )
      return
    }
    case 'customer export': {
      const { tenant: tenantId, customer: customerId, out: file } = values
      if (!tenantId || !customerId || !file)
        throw new UsageError('customer export needs --tenant, --customer and --out')
      // The file is made first (never over another), so that a refused file does not leave an audited export behind.
      const fd = openSync(file, 'wx', 0o600)
      let document: Awaited<ReturnType<typeof exportCustomerData>>
      try {
        document = await withStorage(config, async ({ db, keyring }) => {
          const archiveKek = await openArchiveKeyProvider(config, { create: false })
          return exportCustomerData({ db, keyring, archiveKek }, tenantId, customerId, operator)
        })
        writeFileSync(fd, `${JSON.stringify(document, null, 2)}\n`)
      } catch (error) {
        unlinkSync(file)
        throw error
      } finally {
        closeSync(fd)
      }
      out({
        file,
        devices: document.devices.length,
        conversations: document.conversations.length,
        archiveRecords: document.archive.records.length,
        auditEvents: document.auditEvents.length,
      })
      return
    }
    case 'enrolment-code': {
      const { tenant: tenantId, customer: customerId } = values
      if (!tenantId || !customerId) throw new UsageError('enrolment-code needs --tenant and --customer')
      out(await withStorage(config, ({ db }) => issueEnrolmentCode({ db, config }, tenantId, customerId, operator)))
      return
    }
    default:
      throw new UsageError(`unknown command "${command}"`)
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`strongroom: ${error.message}\n\n${usage}\n`)
    process.exit(2)
  }
  if (
    error instanceof ConfigError ||
    error instanceof TrustedKeysError ||
    error instanceof WitnessFileError ||
    error instanceof RetireRefused
  )
    process.stderr.write(`strongroom: ${error.message}\n`)
  else if (error instanceof Problem)
    process.stderr.write(`strongroom: ${error.message}${error.detail ? `: ${error.detail}` : ''}\n`)
  else process.stderr.write(`strongroom: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
