import type { Kysely } from 'kysely'
import type { Database } from '../platform/db/schema.ts'
import { type AuditEventView, toAuditEventView } from './event-view.ts'
import type { Actor } from './events.ts'

/** The events one actor recorded in a tenant's chain, with one action, in the order they were recorded. */
export async function auditEventsBy(
  db: Kysely<Database>,
  tenantId: string,
  actor: Actor,
  action: string,
): Promise<AuditEventView[]> {
  const rows = await db
    .selectFrom('audit_events')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('actor_kind', '=', actor.kind)
    .where('actor_id', actor.id === null ? 'is' : '=', actor.id)
    .where('action', '=', action)
    .orderBy('id')
    .execute()
  return rows.map(toAuditEventView)
}
