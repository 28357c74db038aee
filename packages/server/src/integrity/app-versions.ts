import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'

/**
 * Switches off one version of an app for the whole tenant (a release found to be vulnerable): every installed copy
 * loses its integrity token at its next request and cannot attest again. Audited.
 */
export async function deactivateAppVersion(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  app: { appId: string; appVersion: string; reason?: string | undefined },
  actor: Actor,
): Promise<void> {
  await ctx.db.transaction().execute(async (trx) => {
    await trx
      .insertInto('deactivated_app_versions')
      .values({
        tenant_id: tenantId,
        app_id: app.appId,
        app_version: app.appVersion,
        reason: app.reason ?? null,
        deactivated_at: new Date(),
      })
      .onConflict((oc) => oc.columns(['tenant_id', 'app_id', 'app_version']).doNothing())
      .execute()
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'app-version.deactivate',
      target: { kind: 'app', id: `${app.appId}@${app.appVersion}` },
      outcome: 'success',
      reason: app.reason,
    })
  })
}

export async function isAppVersionDeactivated(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  app: { appId: string; appVersion: string },
): Promise<boolean> {
  const row = await ctx.db
    .selectFrom('deactivated_app_versions')
    .select('app_id')
    .where('tenant_id', '=', tenantId)
    .where('app_id', '=', app.appId)
    .where('app_version', '=', app.appVersion)
    .executeTakeFirst()
  return row !== undefined
}
