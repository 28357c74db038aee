import { type Kysely, sql } from 'kysely'
import type { Database } from '../platform/db/schema.ts'
import { type AuditEventView, toAuditEventView } from './event-view.ts'

/**
 * The audit events about a data subject, in the order they were recorded (chained or not yet): those whose actor or
 * target is one of `ids` (the customer, their devices, conversations, consents), and those whose details name the
 * customer. It reads the tenant's whole log, which is fine for a request a person makes now and then.
 */
export async function auditEventsAbout(
  db: Kysely<Database>,
  tenantId: string,
  subject: { customerId: string; ids: string[] },
): Promise<AuditEventView[]> {
  const ids = [...new Set([subject.customerId, ...subject.ids])]
  const rows = await db
    .selectFrom('audit_events')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where((eb) =>
      eb.or([
        eb('target_id', 'in', ids),
        eb('actor_id', 'in', ids),
        eb(sql<number>`position(${subject.customerId} in details)`, '>', 0),
      ]),
    )
    .orderBy('id')
    .execute()
  return rows.map(toAuditEventView)
}
