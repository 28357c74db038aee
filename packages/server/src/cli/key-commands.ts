import { rewrapArchiveKeys } from '../archive/archive-keys.ts'
import { rewrapArchiveMemberKeys } from '../archive/archive-member.ts'
import { operator, recordAudit, SYSTEM_CHAIN } from '../audit/events.ts'
import { openBus } from '../platform/bus/open-bus.ts'
import { type Command, command, out, progress, UsageError, withStorage } from '../platform/command.ts'
import { archiveKeyFileOf, type Config } from '../platform/config.ts'
import type { Db } from '../platform/db/database.ts'
import { checkpointKeysJwks, type TrustedKey } from '../platform/hash-chain/trusted-keys.ts'
import { Keyring } from '../platform/keyring/keyring.ts'
import { openArchiveKeyProvider, openKeyProvider } from '../platform/keyring/open-provider.ts'
import type { EncryptedColumn } from '../platform/keyring/reencrypt.ts'
import { RetireRefused, reencryptTenant, retireDataKey } from '../platform/keyring/reencrypt.ts'
import {
  openSigningKey,
  ownedVerificationKeys,
  rewrapSigningKeys,
  rotateSigningKey,
  type SigningKeyPurpose,
} from '../platform/keyring/signing-keys.ts'
import { findTenant, listTenants } from '../tenancy/tenants.ts'

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

/** Tells the running nodes, over the bus, that these tenants have a new data key: they encrypt with it at once. */
async function announceDataKeyRotations(config: Config, tenants: { id: string }[]): Promise<void> {
  const bus = await openBus(config)
  try {
    for (const tenant of tenants) Keyring.announceRotation(bus, tenant.id)
  } finally {
    await bus.close()
  }
}

/** A new archive key-encryption key, with every archive data key re-wrapped under it. */
async function rotateArchiveKek(config: Config): Promise<void> {
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
}

/**
 * The key commands. `keys reencrypt` and `keys retire` walk the sealed columns every module declares
 * (`encryptedColumns`), so a capability's new sealed column is re-encrypted without an edit here.
 */
export function keyCommands(encryptedColumns: readonly EncryptedColumn[]): readonly Command[] {
  return [
    command({
      name: 'keys init',
      synopsis: '[--archive]',
      summary:
        "create the key file (production: do this once, then chmod 600 is kept), or\nwith STRONGROOM_KEY_PROVIDER=pkcs11 the key-encryption key in the token;\nwith --archive, the archive member's own key file",
      options: { archive: { type: 'boolean' } },
      async run(values, context) {
        const config = context.config({ creatingKeyFiles: true })
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
      },
    }),
    command({
      name: 'keys rotate',
      synopsis: '[--data-keys] [--signing-keys] | --archive',
      summary:
        "new key-encryption key; re-wrap every tenant data key (servers may run);\nwith --data-keys, a new data key for every tenant, announced to running nodes;\nwith --signing-keys, new MLS credential, integrity-token, pin-set and\nwipe-command keys, and each bank's new receipt and checkpoint keys (old ones\nstay verifiable); with --archive, a new archive key-encryption key and every\narchive data key re-wrapped under it",
      options: { 'data-keys': { type: 'boolean' }, 'signing-keys': { type: 'boolean' }, archive: { type: 'boolean' } },
      async run(values, context) {
        const config = context.config()
        if (values.archive) return rotateArchiveKek(config)
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
      },
    }),
    command({
      name: 'keys reencrypt',
      synopsis: '[--tenant ID]',
      summary:
        "move every encrypted value to its tenant's newest data key (servers may run;\nprogress on stderr); after `keys rotate --data-keys`",
      options: { tenant: { type: 'string' } },
      async run(values, context) {
        const result = await withStorage(context.config(), async ({ db, keyring }) => {
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
      },
    }),
    command({
      name: 'keys retire',
      synopsis: '--tenant ID --version N',
      summary:
        'erase an old data key version; refused while it is the newest or still seals\nany value (run keys reencrypt first)',
      options: { tenant: { type: 'string' }, version: { type: 'string' } },
      async run(values, context) {
        const version = Number(values.version)
        if (!values.tenant || !Number.isInteger(version) || version < 1) {
          throw new UsageError('keys retire needs --tenant ID and --version N (a data key version)')
        }
        const tenantId = values.tenant
        await withStorage(context.config(), async ({ db, keyring }) => {
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
      },
    }),
    command({
      name: 'keys export-public',
      synopsis: '[--tenant ID]',
      summary:
        "print the audit and archive checkpoint public keys as a JWKS, each bank's\nmarked with its id (tid): keep it outside the database (again after each\nrotation and each new tenant) and give it to audit/archive verify; with\n--tenant, only that bank's",
      options: { tenant: { type: 'string' } },
      async run(values, context) {
        out(
          await withStorage(context.config(), async ({ db, provider }) => {
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
      },
    }),
  ]
}
