import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import type { AttestedVersion } from './policy.ts'

/**
 * Switches off one version of an app for the whole tenant (a release found to be vulnerable): every installed copy
 * loses its integrity token at its next request and cannot attest again. Audited.
 */
export async function deactivateAppVersion(
  ctx: Pick<ServerContext, 'db' | 'bus'>,
  gate: DeactivatedAppVersions,
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
  // This node at once; the others as soon as the bus tells them (and within the list's lifetime if it does not).
  gate.forget(tenantId)
  const event: AppVersionDeactivatedEvent = { tenantId, appId: app.appId, appVersion: app.appVersion }
  ctx.bus.publish(APP_VERSION_DEACTIVATED_SUBJECT_PREFIX + tenantId, new TextEncoder().encode(JSON.stringify(event)))
}

/**
 * Said on the bus when a version is switched off, so that every node's gate forgets what it knew of the tenant and
 * every node closes the streams that version's copies hold open.
 */
export const APP_VERSION_DEACTIVATED_SUBJECT_PREFIX = 'sr.app-version.deactivated.'

export interface AppVersionDeactivatedEvent {
  tenantId: string
  appId: string
  appVersion: string
}

/** A safety net for a lost bus message: how long a node trusts its list without being told of a change. */
const DEACTIVATIONS_KEPT_MS = 5000

/**
 * The gate's view of a tenant's switched-off versions, asked on every gated request. A database read per request was
 * two thirds of the gate's cost, so each node keeps the (short) list per tenant and drops it when the bus says a
 * version was switched off, when the bus reconnects, or after a few seconds.
 */
export class DeactivatedAppVersions {
  readonly #db: ServerContext['db']
  readonly #lists = new Map<string, { versions: Set<string>; until: number }>()
  readonly #unsubscribe: (() => void)[]

  constructor(ctx: Pick<ServerContext, 'db' | 'bus'>) {
    this.#db = ctx.db
    this.#unsubscribe = [
      ctx.bus.subscribe(`${APP_VERSION_DEACTIVATED_SUBJECT_PREFIX}*`, (subject) =>
        this.forget(subject.slice(APP_VERSION_DEACTIVATED_SUBJECT_PREFIX.length)),
      ),
      ctx.bus.onReconnect(() => this.#lists.clear()),
    ]
  }

  async has(tenantId: string, app: { appId: string; appVersion: string }): Promise<boolean> {
    let list = this.#lists.get(tenantId)
    if (!list || list.until <= Date.now()) {
      const rows = await this.#db
        .selectFrom('deactivated_app_versions')
        .select(['app_id', 'app_version'])
        .where('tenant_id', '=', tenantId)
        .execute()
      list = {
        versions: new Set(rows.map((row) => versionKey(row.app_id, row.app_version))),
        until: Date.now() + DEACTIVATIONS_KEPT_MS,
      }
      this.#lists.set(tenantId, list)
    }
    return list.versions.has(versionKey(app.appId, app.appVersion))
  }

  forget(tenantId: string): void {
    this.#lists.delete(tenantId)
  }

  close(): void {
    for (const unsubscribe of this.#unsubscribe) unsubscribe()
  }
}

/**
 * What the version switch (and the integrity token's app version) keys on: Android's versionCode where the platform
 * attested one (Key Attestation, Play Integrity), since the versionName is the app's word; elsewhere the version bound
 * at attestation (App Attest binds it through the client data; Apple attests no version itself).
 */
export function versionSwitchKey(version: AttestedVersion): string {
  return 'versionCode' in version ? androidVersionCodeKey(version.versionCode) : version.appVersion
}

/** How a switched-off Android versionCode is kept beside version strings. */
export const androidVersionCodeKey = (versionCode: number) => `versionCode:${versionCode}`

const versionKey = (appId: string, appVersion: string) => JSON.stringify([appId, appVersion])

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
