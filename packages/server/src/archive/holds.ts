import type { Kysely } from 'kysely'
import { type Actor, recordAudit } from '../audit/events.ts'
import { conversationCustomer } from '../conversations/conversations.ts'
import { requireCustomer } from '../identity/customers.ts'
import type { Database } from '../platform/db/schema.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'

export interface LegalHold {
  id: string
  scopeKind: 'customer' | 'conversation'
  scopeId: string
  reason: string
  placedBy: string
  placedAt: string
  releasedBy: string | null
  releasedAt: string | null
}

const actorName = (actor: Actor) => `${actor.kind}:${actor.id ?? ''}`

function toHold(row: Database['archive_holds'] extends infer T ? { [K in keyof T]: unknown } : never): LegalHold {
  return {
    id: row.id as string,
    scopeKind: row.scope_kind as LegalHold['scopeKind'],
    scopeId: row.scope_id as string,
    reason: row.reason as string,
    placedBy: row.placed_by as string,
    placedAt: new Date(row.placed_at as Date).toISOString(),
    releasedBy: (row.released_by as string | null) ?? null,
    releasedAt: row.released_at ? new Date(row.released_at as Date).toISOString() : null,
  }
}

/** Places a legal hold on a customer or a conversation of the tenant: their archive records stop expiring. */
export async function placeLegalHold(
  db: Kysely<Database>,
  tenantId: string,
  input: { scopeKind: 'customer' | 'conversation'; scopeId: string; reason: string },
  actor: Actor,
): Promise<LegalHold> {
  if (input.scopeKind === 'customer') await requireCustomer({ db }, tenantId, input.scopeId)
  else if ((await conversationCustomer({ db }, tenantId, input.scopeId)) === undefined) {
    throw new Problem('request/not-found', 'no such conversation')
  }
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('archive_holds')
      .values({
        id: newId('hld'),
        tenant_id: tenantId,
        scope_kind: input.scopeKind,
        scope_id: input.scopeId,
        reason: input.reason,
        placed_by: actorName(actor),
        placed_at: new Date(),
      })
      .returningAll()
      .executeTakeFirstOrThrow()
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'archive.hold.place',
      target: { kind: input.scopeKind, id: input.scopeId },
      outcome: 'success',
      details: { holdId: row.id },
    })
    return toHold(row)
  })
}

/** Releases a hold; expiry resumes for what no other hold covers. */
export async function releaseLegalHold(
  db: Kysely<Database>,
  tenantId: string,
  holdId: string,
  actor: Actor,
): Promise<LegalHold> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable('archive_holds')
      .set({ released_at: new Date(), released_by: actorName(actor) })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', holdId)
      .where('released_at', 'is', null)
      .returningAll()
      .executeTakeFirst()
    if (!row) {
      const exists = await trx
        .selectFrom('archive_holds')
        .select('id')
        .where('tenant_id', '=', tenantId)
        .where('id', '=', holdId)
        .executeTakeFirst()
      throw exists ? new Problem('archive/hold-released') : new Problem('request/not-found', 'no such legal hold')
    }
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'archive.hold.release',
      target: { kind: row.scope_kind, id: row.scope_id },
      outcome: 'success',
      details: { holdId },
    })
    return toHold(row)
  })
}

export async function listLegalHolds(db: Kysely<Database>, tenantId: string): Promise<LegalHold[]> {
  const rows = await db
    .selectFrom('archive_holds')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('placed_at', 'desc')
    .limit(1000)
    .execute()
  return rows.map(toHold)
}

/** The legal holds, active or released, on a customer or on any of the given conversations, newest first. */
export async function holdsOn(
  db: Kysely<Database>,
  tenantId: string,
  scope: { customerId: string; conversationIds: string[] },
): Promise<LegalHold[]> {
  const rows = await db
    .selectFrom('archive_holds')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where((eb) =>
      eb.or([
        eb.and([eb('scope_kind', '=', 'customer'), eb('scope_id', '=', scope.customerId)]),
        ...(scope.conversationIds.length > 0
          ? [eb.and([eb('scope_kind', '=', 'conversation'), eb('scope_id', 'in', scope.conversationIds)])]
          : []),
      ]),
    )
    .orderBy('placed_at', 'desc')
    .execute()
  return rows.map(toHold)
}
