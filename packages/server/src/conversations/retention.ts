import type { Actor } from '../audit/events.ts'
import { recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'

/**
 * How long message ciphertext is kept for devices: the tenant's default, and a conversation may override it. A
 * message gets its `expires_at` from them when the sender gives none; the archive keeps its own copy on its own terms.
 */
export interface RetentionPolicy {
  /** Days after which a message without its own expiry is deleted from the devices' store; null keeps them. */
  deviceMessageDays: number | null
}

type Db = Pick<ServerContext, 'db'>

export async function loadRetentionPolicy(ctx: Db, tenantId: string): Promise<RetentionPolicy> {
  const row = await ctx.db
    .selectFrom('message_retention_policies')
    .select('device_message_days')
    .where('tenant_id', '=', tenantId)
    .executeTakeFirst()
  return { deviceMessageDays: row?.device_message_days ?? null }
}

/** Replaces the tenant's default (null removes it), audited in the same transaction. */
export async function saveRetentionPolicy(ctx: Db, tenantId: string, policy: RetentionPolicy, actor: Actor) {
  await ctx.db.transaction().execute(async (trx) => {
    if (policy.deviceMessageDays === null) {
      await trx.deleteFrom('message_retention_policies').where('tenant_id', '=', tenantId).execute()
    } else {
      const values = {
        device_message_days: policy.deviceMessageDays,
        updated_at: new Date(),
        updated_by: `${actor.kind}:${actor.id}`,
      }
      await trx
        .insertInto('message_retention_policies')
        .values({ tenant_id: tenantId, ...values })
        .onConflict((oc) => oc.column('tenant_id').doUpdateSet(values))
        .execute()
    }
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'policy.retention.update',
      outcome: 'success',
      details: { deviceMessageDays: policy.deviceMessageDays },
    })
  })
}

/** Sets or clears (null: the tenant's default applies) a conversation's retention for devices, audited. */
export async function setConversationRetention(
  ctx: Db,
  tenantId: string,
  conversationId: string,
  deviceMessageDays: number | null,
  actor: Actor,
): Promise<void> {
  await ctx.db.transaction().execute(async (trx) => {
    const updated = await trx
      .updateTable('conversations')
      .set({ device_message_days: deviceMessageDays })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', conversationId)
      .executeTakeFirst()
    if (Number(updated.numUpdatedRows) === 0) throw new Problem('request/not-found', 'no such conversation')
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'conversation.retention.update',
      target: { kind: 'conversation', id: conversationId },
      outcome: 'success',
      details: { deviceMessageDays },
    })
  })
}

/** Each conversation's own retention for devices (null: the tenant's default applies). */
export async function conversationRetentionDays(
  ctx: Db,
  tenantId: string,
  conversationIds: string[],
): Promise<Map<string, number | null>> {
  if (conversationIds.length === 0) return new Map()
  const rows = await ctx.db
    .selectFrom('conversations')
    .select(['id', 'device_message_days'])
    .where('tenant_id', '=', tenantId)
    .where('id', 'in', conversationIds)
    .execute()
  return new Map(rows.map((row) => [row.id, row.device_message_days]))
}
