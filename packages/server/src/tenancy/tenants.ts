import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { newId } from '../platform/ids.ts'

export interface Tenant {
  id: string
  name: string
  createdAt: string
}

/** Creates a bank with its own data and blind-index keys, in one transaction. */
export async function createTenant(
  ctx: Pick<ServerContext, 'db' | 'keyring'>,
  name: string,
  actor: Actor,
): Promise<Tenant> {
  const id = newId('ten')
  const createdAt = new Date()
  await ctx.db.transaction().execute(async (trx) => {
    await trx.insertInto('tenants').values({ id, name, created_at: createdAt }).execute()
    await ctx.keyring.createTenantKeys(trx, id)
    await recordAudit(trx, {
      tenantId: id,
      actor,
      action: 'tenant.create',
      target: { kind: 'tenant', id },
      outcome: 'success',
    })
  })
  return { id, name, createdAt: createdAt.toISOString() }
}

export async function findTenant(ctx: Pick<ServerContext, 'db'>, id: string): Promise<Tenant | undefined> {
  const row = await ctx.db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst()
  return row && { id: row.id, name: row.name, createdAt: new Date(row.created_at).toISOString() }
}

export async function listTenants(ctx: Pick<ServerContext, 'db'>): Promise<Tenant[]> {
  const rows = await ctx.db.selectFrom('tenants').selectAll().orderBy('created_at').execute()
  return rows.map((row) => ({ id: row.id, name: row.name, createdAt: new Date(row.created_at).toISOString() }))
}
