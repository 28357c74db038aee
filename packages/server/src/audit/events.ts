import type { Kysely } from 'kysely'
import type { Database } from '../platform/db/schema.ts'
import type { Actor } from '../platform/http/principal.ts'

/** The chain of events that belong to no tenant: key rotation, operator commands, refusals of unknown credentials. */
export const SYSTEM_CHAIN = 'system'

/** Who did it. Operators act through the CLI on the host; `system` is Strongroom itself. */
/** Defined beside the principals in platform/http (the access rules name it); exported here for the audit log's callers. */
export type { Actor }

export const operator: Actor = { kind: 'operator', id: null }

export interface AuditEvent {
  /** The tenant whose chain records it, or SYSTEM_CHAIN. */
  tenantId: string
  actor: Actor
  /** What happened, as `area.verb` (`staff.token.issue`, `device.enrol`, `auth.refuse`). */
  action: string
  target?: { kind: string; id: string } | undefined
  outcome: 'success' | 'failure' | 'denied'
  reason?: string | undefined
  /** Facts that explain the event. Never a secret: no token, code, key or message content. */
  details?: Record<string, string | number | boolean | null | string[]> | undefined
}

/**
 * Records a security event. Call it with the transaction of the action it records, so that the action and its
 * record commit together or not at all; the chainer links it into the tenant's hash chain moments later.
 */
export async function recordAudit(db: Kysely<Database>, event: AuditEvent): Promise<void> {
  await db
    .insertInto('audit_events')
    .values({
      tenant_id: event.tenantId,
      occurred_at: new Date(),
      actor_kind: event.actor.kind,
      actor_id: event.actor.id,
      action: event.action,
      target_kind: event.target?.kind ?? null,
      target_id: event.target?.id ?? null,
      outcome: event.outcome,
      reason: event.reason ?? null,
      details: JSON.stringify(event.details ?? {}),
    })
    .execute()
}
