import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'
import type { EncryptedColumn } from '../platform/keyring/reencrypt.ts'
import { indexCustomerName } from './customer-search.ts'

/** The customer columns the keyring seals, for `keys reencrypt` and `keys retire`. */
export const customerEncryptedColumns: EncryptedColumn[] = ['external_ref', 'display_name', 'phone_number'].map(
  (column) => ({
    table: 'customers',
    column,
    key: ['id'],
    field: (row) => ({ table: 'customers', column, rowId: row.id as string }),
  }),
)

export interface Customer {
  id: string
  externalRef: string
  displayName: string
  /** E.164; how a text from a public channel (SMS, WhatsApp) is matched to the customer. */
  phoneNumber?: string
  createdAt: string
}

/** A phone number in E.164, as customers' numbers are stored and matched. */
export { E164_PATTERN } from '@strongroom/sdk/protocol'

type Ctx = Pick<ServerContext, 'db' | 'keyring'>
const EXTERNAL_REF_INDEX = 'customers.external_ref'
const PHONE_NUMBER_INDEX = 'customers.phone_number'

/**
 * Creates a customer. The bank's own reference and the display name are encrypted at rest; the reference is found
 * again through its blind index, so the database never holds it in clear.
 */
export async function createCustomer(
  ctx: Ctx,
  tenantId: string,
  input: { externalRef: string; displayName: string; phoneNumber?: string | undefined },
): Promise<Customer> {
  const id = newId('cus')
  const field = (column: string) => ({ table: 'customers', column, rowId: id })
  const index = await ctx.keyring.blindIndex(tenantId, EXTERNAL_REF_INDEX, input.externalRef)
  const phone = input.phoneNumber
  const createdAt = new Date()
  const inserted = await ctx.db
    .insertInto('customers')
    .values({
      tenant_id: tenantId,
      id,
      external_ref_index: index,
      external_ref: await ctx.keyring.encrypt(tenantId, field('external_ref'), input.externalRef),
      display_name: await ctx.keyring.encrypt(tenantId, field('display_name'), input.displayName),
      phone_number: phone === undefined ? null : await ctx.keyring.encrypt(tenantId, field('phone_number'), phone),
      phone_number_index:
        phone === undefined ? null : await ctx.keyring.blindIndex(tenantId, PHONE_NUMBER_INDEX, phone),
      created_at: createdAt,
    })
    .onConflict((oc) => oc.columns(['tenant_id', 'external_ref_index']).doNothing())
    .executeTakeFirst()
  if ((inserted.numInsertedOrUpdatedRows ?? 0n) === 0n) throw new Problem('customers/duplicate-reference')
  await indexCustomerName(ctx, tenantId, id, input.displayName)
  return {
    id,
    externalRef: input.externalRef,
    displayName: input.displayName,
    ...(phone === undefined ? {} : { phoneNumber: phone }),
    createdAt: createdAt.toISOString(),
  }
}

/**
 * The one customer of the tenant with this phone number (E.164), found through its blind index. None when no
 * customer or several (a shared family phone) have it: a public-channel sender is then left unidentified rather than
 * matched to the wrong person.
 */
export async function findCustomerIdByPhoneNumber(
  ctx: Ctx,
  tenantId: string,
  phoneNumber: string,
): Promise<string | undefined> {
  const index = await ctx.keyring.blindIndex(tenantId, PHONE_NUMBER_INDEX, phoneNumber)
  const rows = await ctx.db
    .selectFrom('customers')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('phone_number_index', '=', index)
    .limit(2)
    .execute()
  return rows.length === 1 ? rows[0]?.id : undefined
}

/** Every customer of the tenant with this phone number on file (E.164), through its blind index (for search). */
export async function customerIdsByPhoneNumber(ctx: Ctx, tenantId: string, phoneNumber: string): Promise<string[]> {
  const index = await ctx.keyring.blindIndex(tenantId, PHONE_NUMBER_INDEX, phoneNumber)
  const rows = await ctx.db
    .selectFrom('customers')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('phone_number_index', '=', index)
    .limit(100)
    .execute()
  return rows.map((r) => r.id)
}

async function decryptCustomer(
  ctx: Ctx,
  row: {
    tenant_id: string
    id: string
    external_ref: Uint8Array
    display_name: Uint8Array
    phone_number: Uint8Array | null
    created_at: Date | string
  },
): Promise<Customer> {
  const field = (column: string) => ({ table: 'customers', column, rowId: row.id })
  return {
    id: row.id,
    externalRef: await ctx.keyring.decryptText(row.tenant_id, field('external_ref'), row.external_ref),
    displayName: await ctx.keyring.decryptText(row.tenant_id, field('display_name'), row.display_name),
    ...(row.phone_number === null
      ? {}
      : { phoneNumber: await ctx.keyring.decryptText(row.tenant_id, field('phone_number'), row.phone_number) }),
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

/**
 * Throws not-found unless the customer is one of the tenant's (other capabilities check through this). With `lock`, in
 * the caller's transaction, the customer's row stays locked until it commits: an erasure takes it so that the search
 * backfill, which holds its customers' rows shared while it indexes them, never indexes a customer being erased.
 */
export async function requireCustomer(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  customerId: string,
  options: { lock?: boolean } = {},
) {
  let query = ctx.db.selectFrom('customers').select('id').where('tenant_id', '=', tenantId).where('id', '=', customerId)
  if (options.lock) query = query.forUpdate()
  const row = await query.executeTakeFirst()
  if (!row) throw new Problem('request/not-found', 'no such customer')
}

/** A row's place in the search backfill's (tenant, id) order. */
export interface RowKey {
  tenantId: string
  id: string
}

/**
 * The next customers of every tenant after `after`, in (tenant, id) order, with their names, for the search backfill.
 * In the caller's transaction their rows stay locked shared until it commits (an erasure waits, see requireCustomer).
 */
export async function customerNamesAfter(
  ctx: Ctx,
  after: RowKey,
  limit: number,
): Promise<{ tenantId: string; id: string; name: string }[]> {
  const rows = await ctx.db
    .selectFrom('customers')
    .select(['tenant_id', 'id', 'display_name'])
    .where((eb) => eb(eb.refTuple('tenant_id', 'id'), '>', eb.tuple(after.tenantId, after.id)))
    .orderBy('tenant_id')
    .orderBy('id')
    .limit(limit)
    .forShare()
    .execute()
  return Promise.all(
    rows.map(async (row) => ({
      tenantId: row.tenant_id,
      id: row.id,
      name: await ctx.keyring.decryptText(
        row.tenant_id,
        { table: 'customers', column: 'display_name', rowId: row.id },
        row.display_name,
      ),
    })),
  )
}

/** Locks these customers' rows shared until the caller's transaction commits (the search backfill, see above). */
export async function lockCustomersShared(ctx: Pick<ServerContext, 'db'>, customers: RowKey[]): Promise<void> {
  if (customers.length === 0) return
  await ctx.db
    .selectFrom('customers')
    .select('id')
    .where((eb) =>
      eb(
        eb.refTuple('tenant_id', 'id'),
        'in',
        customers.map((c) => eb.tuple(c.tenantId, c.id)),
      ),
    )
    .orderBy('tenant_id')
    .orderBy('id')
    .forShare()
    .execute()
}
