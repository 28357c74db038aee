import type { ServerContext } from '../platform/context.ts'

/**
 * A tenant's named policy documents (step-up, DLP…), one JSON document per name. Each capability owns its document's
 * schema and validates it before saving; this only stores and reads it.
 */
export async function loadTenantPolicy<T>(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  name: string,
): Promise<T | undefined> {
  const row = await ctx.db
    .selectFrom('tenant_policies')
    .select('document')
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .executeTakeFirst()
  return row ? (JSON.parse(row.document) as T) : undefined
}

/** Replaces the document; give a transaction's `db` to save it together with its audit event. */
export async function saveTenantPolicy(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  name: string,
  document: unknown,
  updatedBy: string,
): Promise<void> {
  const values = { document: JSON.stringify(document), updated_at: new Date(), updated_by: updatedBy }
  await ctx.db
    .insertInto('tenant_policies')
    .values({ tenant_id: tenantId, name, ...values })
    .onConflict((oc) => oc.columns(['tenant_id', 'name']).doUpdateSet(values))
    .execute()
}
