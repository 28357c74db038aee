import { createPublicKey, type KeyObject } from 'node:crypto'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import type { PlayIntegrityKeys } from './verifiers/play-integrity.ts'
import type { ExpectedApp } from './verifiers/verifier.ts'

export interface AppRegistration {
  apple?: { teamId: string; bundleId: string } | undefined
  android?:
    | {
        packageName: string
        signingCertificateSha256: string[]
        /** The app's Play Integrity keys from the Play Console, base64. */
        playIntegrity?: { decryptionKey: string; verificationKey: string } | undefined
      }
    | undefined
}

const playDecryptionKeyField = (tenantId: string, appId: string) => ({
  table: 'integrity_apps',
  column: 'play_decryption_key',
  rowId: `${tenantId}:${appId}`,
})

function verificationKeyOf(base64: string): KeyObject {
  let key: KeyObject
  try {
    key = createPublicKey({ key: Buffer.from(base64, 'base64'), format: 'der', type: 'spki' })
  } catch {
    throw new Problem('request/invalid', 'the Play Integrity verification key is not a public key (base64 DER)')
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Problem('request/invalid', 'the Play Integrity verification key must be an EC P-256 key')
  }
  return key
}

/** The Play Integrity keys as stored: the decryption key sealed, the verification key checked. */
async function playIntegrityColumns(
  ctx: Pick<ServerContext, 'keyring'>,
  tenantId: string,
  appId: string,
  keys: { decryptionKey: string; verificationKey: string } | undefined,
) {
  if (keys === undefined) return { play_decryption_key: null, play_verification_key: null }
  const decryptionKey = Buffer.from(keys.decryptionKey, 'base64')
  if (decryptionKey.length !== 32) {
    throw new Problem('request/invalid', 'the Play Integrity decryption key must be 32 bytes (AES-256), base64')
  }
  verificationKeyOf(keys.verificationKey)
  return {
    play_decryption_key: await ctx.keyring.encrypt(tenantId, playDecryptionKeyField(tenantId, appId), decryptionKey),
    play_verification_key: keys.verificationKey,
  }
}

/**
 * Registers how Apple and Google know one of the bank's apps: the App ID (team and bundle) an App Attest key must be
 * scoped to, the Android package and the certificates allowed to sign it. Hardware attestations for an app that is
 * not registered are refused.
 */
export async function registerApp(
  ctx: Pick<ServerContext, 'db' | 'keyring'>,
  tenantId: string,
  appId: string,
  registration: AppRegistration,
  actor: Actor,
): Promise<void> {
  const digests = registration.android?.signingCertificateSha256.map((d) => d.replaceAll(':', '').toLowerCase())
  const row = {
    apple_team_id: registration.apple?.teamId ?? null,
    apple_bundle_id: registration.apple?.bundleId ?? null,
    android_package: registration.android?.packageName ?? null,
    android_signing_digests: digests ? JSON.stringify(digests) : null,
    ...(await playIntegrityColumns(ctx, tenantId, appId, registration.android?.playIntegrity)),
    updated_at: new Date(),
  }
  await ctx.db.transaction().execute(async (trx) => {
    await trx
      .insertInto('integrity_apps')
      .values({ tenant_id: tenantId, app_id: appId, ...row })
      .onConflict((oc) => oc.columns(['tenant_id', 'app_id']).doUpdateSet(row))
      .execute()
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'integrity.app.register',
      target: { kind: 'app', id: appId },
      outcome: 'success',
      details: {
        apple: registration.apple ? `${registration.apple.teamId}.${registration.apple.bundleId}` : null,
        android: registration.android?.packageName ?? null,
        playIntegrity: registration.android?.playIntegrity !== undefined,
      },
    })
  })
}

/** What an attestation for this app must show, or undefined when the bank has not registered the app. */
export async function expectedApp(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  appId: string,
): Promise<ExpectedApp | undefined> {
  const row = await ctx.db
    .selectFrom('integrity_apps')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('app_id', '=', appId)
    .executeTakeFirst()
  if (!row) return undefined
  const expected: ExpectedApp = {}
  if (row.apple_team_id && row.apple_bundle_id) {
    expected.apple = { teamId: row.apple_team_id, bundleId: row.apple_bundle_id }
  }
  if (row.android_package && row.android_signing_digests) {
    expected.android = {
      packageName: row.android_package,
      signingCertificateSha256: JSON.parse(row.android_signing_digests) as string[],
    }
  }
  return expected
}

/** The app's Play Integrity keys, or undefined when the bank has registered none. */
export async function playIntegrityKeys(
  ctx: Pick<ServerContext, 'db' | 'keyring'>,
  tenantId: string,
  appId: string,
): Promise<PlayIntegrityKeys | undefined> {
  const row = await ctx.db
    .selectFrom('integrity_apps')
    .select(['play_decryption_key', 'play_verification_key'])
    .where('tenant_id', '=', tenantId)
    .where('app_id', '=', appId)
    .executeTakeFirst()
  if (!row?.play_decryption_key || !row.play_verification_key) return undefined
  const field = playDecryptionKeyField(tenantId, appId)
  return {
    decryptionKey: new Uint8Array(await ctx.keyring.decrypt(tenantId, field, row.play_decryption_key)),
    verificationKey: verificationKeyOf(row.play_verification_key),
  }
}
