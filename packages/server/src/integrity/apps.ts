import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import type { ExpectedApp } from './verifiers/verifier.ts'

export interface AppRegistration {
  apple?: { teamId: string; bundleId: string } | undefined
  android?: { packageName: string; signingCertificateSha256: string[] } | undefined
}

/**
 * Registers how Apple and Google know one of the bank's apps: the App ID (team and bundle) an App Attest key must be
 * scoped to, the Android package and the certificates allowed to sign it. Hardware attestations for an app that is
 * not registered are refused.
 */
export async function registerApp(
  ctx: Pick<ServerContext, 'db'>,
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
