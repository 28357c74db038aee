import { type Actor, recordAudit } from '../audit/events.ts'
import { requireCustomer } from '../identity/customers.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { openConsentDetails } from './consents.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring'>

/** A payee a customer blocked by declining a request as "This wasn't me", and whether the block was lifted. */
export interface PayeeBlock {
  /** The declined request that blocked the payee. */
  consentId: string
  customerId: string
  payee: { name: string; account: string }
  blockedAt: string
  liftedAt: string | null
  liftedBy: string | null
}

const COLUMNS = [
  'tenant_id',
  'id',
  'customer_id',
  'details',
  'decided_at',
  'payee_block_lifted_at',
  'payee_block_lifted_by',
] as const

const iso = (value: Date | string | null) => (value === null ? null : new Date(value).toISOString())

/** A customer's payee blocks, newest first, lifted ones included (they stay as evidence). */
export async function listPayeeBlocks(ctx: Ctx, tenantId: string, customerId: string): Promise<PayeeBlock[]> {
  await requireCustomer(ctx, tenantId, customerId)
  const rows = await ctx.db
    .selectFrom('consents')
    .select(COLUMNS)
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .where('blocked_payee_index', 'is not', null)
    .orderBy('decided_at', 'desc')
    .execute()
  return Promise.all(
    rows.map(async (row) => ({
      consentId: row.id,
      customerId: row.customer_id,
      payee: (await openConsentDetails(ctx, row)).payee,
      blockedAt: iso(row.decided_at) as string,
      liftedAt: iso(row.payee_block_lifted_at),
      liftedBy: row.payee_block_lifted_by,
    })),
  )
}

/**
 * Lifts the block a declined request put on its payee, for that customer: every block of theirs on the same account
 * (a customer may have declined two requests to it), in one transaction with the audit event that names who and why.
 * The blind index stays, as evidence of the fraud report. A block not in force (none, or lifted) is not found.
 */
export async function liftPayeeBlock(
  ctx: Ctx,
  tenantId: string,
  consentId: string,
  input: { reason: string },
  actor: Actor,
): Promise<PayeeBlock> {
  const now = new Date()
  const liftedBy = `${actor.kind}:${actor.id}`
  const row = await ctx.db.transaction().execute(async (trx) => {
    const block = await trx
      .selectFrom('consents')
      .select(['customer_id', 'blocked_payee_index'])
      .where('tenant_id', '=', tenantId)
      .where('id', '=', consentId)
      .where('blocked_payee_index', 'is not', null)
      .where('payee_block_lifted_at', 'is', null)
      .forUpdate()
      .executeTakeFirst()
    if (!block?.blocked_payee_index) throw new Problem('request/not-found', 'no payee block in force on this request')
    const lifted = await trx
      .updateTable('consents')
      .set({ payee_block_lifted_at: now, payee_block_lifted_by: liftedBy })
      .where('tenant_id', '=', tenantId)
      .where('customer_id', '=', block.customer_id)
      .where('blocked_payee_index', '=', block.blocked_payee_index)
      .where('payee_block_lifted_at', 'is', null)
      .returning('id')
      .execute()
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'consent.payee_block.lift',
      target: { kind: 'consent', id: consentId },
      outcome: 'success',
      details: { customerId: block.customer_id, reason: input.reason, consents: lifted.map((r) => r.id) },
    })
    return trx
      .selectFrom('consents')
      .select(COLUMNS)
      .where('tenant_id', '=', tenantId)
      .where('id', '=', consentId)
      .executeTakeFirstOrThrow()
  })
  return {
    consentId: row.id,
    customerId: row.customer_id,
    payee: (await openConsentDetails(ctx, row)).payee,
    blockedAt: iso(row.decided_at) as string,
    liftedAt: iso(row.payee_block_lifted_at),
    liftedBy: row.payee_block_lifted_by,
  }
}
