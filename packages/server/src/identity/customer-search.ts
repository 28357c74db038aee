import type { Kysely } from 'kysely'
import type { ServerContext } from '../platform/context.ts'
import type { Database } from '../platform/db/schema.ts'
import { searchTerms, wordsOf } from '../platform/keyring/search-terms.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring'>
const NAME_TERM = 'customers.display_name.word'

/** Indexes the words of a customer's name for search, as blind terms (in the caller's transaction or not). */
export async function indexCustomerName(ctx: Ctx, tenantId: string, customerId: string, name: string): Promise<void> {
  const terms = await searchTerms(ctx.keyring, tenantId, NAME_TERM, wordsOf(name))
  if (terms.length === 0) return
  await ctx.db
    .insertInto('customer_name_terms')
    .values(terms.map((term) => ({ tenant_id: tenantId, term, customer_id: customerId })))
    .onConflict((oc) => oc.doNothing())
    .execute()
}

/** Forgets the search terms of a customer's name (a data-subject erasure): their name no longer finds them. */
export async function forgetCustomerName(db: Kysely<Database>, tenantId: string, customerId: string): Promise<void> {
  await db
    .deleteFrom('customer_name_terms')
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .execute()
}

/** The tenant's customers whose name holds every one of these words (whole words, case and accents ignored). */
export async function customerIdsByName(ctx: Ctx, tenantId: string, words: string[], limit: number): Promise<string[]> {
  if (words.length === 0) return []
  const terms = await searchTerms(ctx.keyring, tenantId, NAME_TERM, words)
  const rows = await ctx.db
    .selectFrom('customer_name_terms')
    .select('customer_id')
    .where('tenant_id', '=', tenantId)
    .where('term', 'in', terms)
    .groupBy('customer_id')
    .having((eb) => eb.fn.count('term').distinct(), '=', terms.length)
    .orderBy('customer_id')
    .limit(limit)
    .execute()
  return rows.map((r) => r.customer_id)
}
