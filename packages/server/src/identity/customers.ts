import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'

export interface Customer {
  id: string
  externalRef: string
  displayName: string
  createdAt: string
}

type Ctx = Pick<ServerContext, 'db' | 'keyring'>
const EXTERNAL_REF_INDEX = 'customers.external_ref'

/**
 * Creates a customer. The bank's own reference and the display name are encrypted at rest; the reference is found
 * again through its blind index, so the database never holds it in clear.
 */
export async function createCustomer(
  ctx: Ctx,
  tenantId: string,
  input: { externalRef: string; displayName: string },
): Promise<Customer> {
  const id = newId('cus')
  const field = (column: string) => ({ table: 'customers', column, rowId: id })
  const index = await ctx.keyring.blindIndex(tenantId, EXTERNAL_REF_INDEX, input.externalRef)
  const createdAt = new Date()
  const inserted = await ctx.db
    .insertInto('customers')
    .values({
      tenant_id: tenantId,
      id,
      external_ref_index: index,
      external_ref: await ctx.keyring.encrypt(tenantId, field('external_ref'), input.externalRef),
      display_name: await ctx.keyring.encrypt(tenantId, field('display_name'), input.displayName),
      created_at: createdAt,
    })
    .onConflict((oc) => oc.columns(['tenant_id', 'external_ref_index']).doNothing())
    .executeTakeFirst()
  if ((inserted.numInsertedOrUpdatedRows ?? 0n) === 0n) throw new Problem('customers/duplicate-reference')
  return { id, externalRef: input.externalRef, displayName: input.displayName, createdAt: createdAt.toISOString() }
}

async function decryptCustomer(
  ctx: Ctx,
  row: { tenant_id: string; id: string; external_ref: Uint8Array; display_name: Uint8Array; created_at: Date | string },
): Promise<Customer> {
  const field = (column: string) => ({ table: 'customers', column, rowId: row.id })
  return {
    id: row.id,
    externalRef: await ctx.keyring.decryptText(row.tenant_id, field('external_ref'), row.external_ref),
    displayName: await ctx.keyring.decryptText(row.tenant_id, field('display_name'), row.display_name),
    createdAt: new Date(row.created_at).toISOString(),
  }
}

export async function findCustomer(ctx: Ctx, tenantId: string, id: string): Promise<Customer | undefined> {
  const row = await ctx.db
    .selectFrom('customers')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .executeTakeFirst()
  return row && decryptCustomer(ctx, row)
}

/** Throws not-found unless the customer is one of the tenant's (other capabilities check through this). */
export async function requireCustomer(ctx: Pick<ServerContext, 'db'>, tenantId: string, customerId: string) {
  const row = await ctx.db
    .selectFrom('customers')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('id', '=', customerId)
    .executeTakeFirst()
  if (!row) throw new Problem('request/not-found', 'no such customer')
}
