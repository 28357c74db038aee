import type { CannedReply, CannedReplyInput } from '@strongroom/sdk/protocol'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'

type Ctx = Pick<ServerContext, 'db'>

const UNIQUE_VIOLATION = '23505'

function toReply(row: { id: string; shortcut: string; title: string; body: string; updated_at: Date | string }) {
  return {
    id: row.id,
    shortcut: row.shortcut,
    title: row.title,
    text: row.body,
    updatedAt: new Date(row.updated_at).toISOString(),
  }
}

/** The bank's canned replies, by shortcut. */
export async function listCannedReplies(ctx: Ctx, tenantId: string): Promise<CannedReply[]> {
  const rows = await ctx.db
    .selectFrom('canned_replies')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('shortcut')
    .limit(500)
    .execute()
  return rows.map(toReply)
}

/**
 * Adds a canned reply, or changes one when `id` is given (audited either way). Its shortcut is the bank's only
 * one of that name: another gets 409.
 */
export async function saveCannedReply(
  ctx: Ctx,
  tenantId: string,
  input: CannedReplyInput & { id?: string | undefined },
  actor: Actor,
): Promise<CannedReply> {
  const now = new Date()
  const row = {
    shortcut: input.shortcut,
    title: input.title,
    body: input.text,
    updated_by: actor.id ?? '',
    updated_at: now,
  }
  try {
    return await ctx.db.transaction().execute(async (trx) => {
      const saved = input.id
        ? await trx
            .updateTable('canned_replies')
            .set(row)
            .where('tenant_id', '=', tenantId)
            .where('id', '=', input.id)
            .returningAll()
            .executeTakeFirst()
        : await trx
            .insertInto('canned_replies')
            .values({ ...row, tenant_id: tenantId, id: newId('cnr'), created_at: now })
            .returningAll()
            .executeTakeFirst()
      if (!saved) throw new Problem('request/not-found', 'no such canned reply')
      await recordAudit(trx, {
        tenantId,
        actor,
        action: input.id ? 'desk.canned-reply.changed' : 'desk.canned-reply.added',
        target: { kind: 'canned-reply', id: saved.id },
        outcome: 'success',
        details: { shortcut: saved.shortcut },
      })
      return toReply(saved)
    })
  } catch (error) {
    if ((error as { code?: string }).code === UNIQUE_VIOLATION) {
      throw new Problem('tenancy/duplicate', `a canned reply already has the shortcut /${input.shortcut}`)
    }
    throw error
  }
}

/** Removes a canned reply (audited). */
export async function deleteCannedReply(ctx: Ctx, tenantId: string, id: string, actor: Actor): Promise<void> {
  await ctx.db.transaction().execute(async (trx) => {
    const deleted = await trx
      .deleteFrom('canned_replies')
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .returning('shortcut')
      .executeTakeFirst()
    if (!deleted) throw new Problem('request/not-found', 'no such canned reply')
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'desk.canned-reply.deleted',
      target: { kind: 'canned-reply', id },
      outcome: 'success',
      details: { shortcut: deleted.shortcut },
    })
  })
}
