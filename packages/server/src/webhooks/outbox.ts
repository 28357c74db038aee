import { randomUUID } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Database } from '../platform/db/schema.ts'
import { webhookUrlOf } from '../tenancy/api-clients.ts'

export interface WebhookEvent {
  tenantId: string
  /** The bank backend to notify; nothing is sent if it registered no webhook URL. */
  clientId: string
  type: string
  data: Record<string, unknown>
}

/**
 * Queues a notification for a bank backend in the caller's transaction, so that it is sent if and only if the event
 * it reports commits. Its id stays the same through every retry, so the receiver can drop repeats.
 */
export async function enqueueWebhook(db: Kysely<Database>, event: WebhookEvent): Promise<string | undefined> {
  const url = await webhookUrlOf({ db }, event.tenantId, event.clientId)
  if (!url) return undefined
  const id = `evt_${randomUUID()}`
  const now = new Date()
  const body = { id, type: event.type, createdAt: now.toISOString(), data: event.data }
  await db
    .insertInto('webhook_deliveries')
    .values({
      id,
      tenant_id: event.tenantId,
      client_id: event.clientId,
      url,
      event_type: event.type,
      body: Buffer.from(JSON.stringify(body)),
      status: 'pending',
      next_attempt_at: now,
      created_at: now,
    })
    .execute()
  return id
}
