import { STAFF_INVITATION_MAX_SECONDS, type StaffMember } from '@strongroom/sdk/protocol'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { Config } from '../platform/config.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId, newSecret, secretHash } from '../platform/ids.ts'
import { findStaff, lockActiveStaff } from './staff.ts'

type Ctx = Pick<ServerContext, 'db'>

/** A day by default: long enough to reach the message, short enough that a forwarded link soon stops working. */
export const STAFF_INVITATION_TTL_SECONDS = 86400

export interface StaffInvitation {
  invitationId: string
  staffId: string
  /** The console page that enrols a passkey: the secret travels in the fragment, so no server or proxy logs it. */
  url: string
  expiresAt: string
}

/** Where the console is: the public URL, or the listening one on this machine. */
export const consoleBaseOf = (config: Pick<Config, 'publicUrl' | 'host' | 'port'>) =>
  config.publicUrl ?? `http://${config.host}:${config.port}`

/**
 * Invites a staff member to enrol a passkey (audited): a single-use, short-lived link whose secret is stored only as
 * its hash. A new invitation replaces the member's earlier unused ones, so only the last link sent works. A deactivated
 * member gets none.
 */
export async function inviteStaff(
  ctx: Ctx,
  staff: StaffMember,
  options: { ttlSeconds: number; consoleBase: string },
  actor: Actor,
): Promise<StaffInvitation> {
  const secret = newSecret('sri')
  const invitationId = newId('inv')
  const now = new Date()
  const expiresAt = new Date(now.getTime() + Math.min(options.ttlSeconds, STAFF_INVITATION_MAX_SECONDS) * 1000)
  await ctx.db.transaction().execute(async (trx) => {
    await lockActiveStaff(trx, staff)
    await trx
      .updateTable('staff_invitations')
      .set({ used_at: now })
      .where('tenant_id', '=', staff.tenantId)
      .where('staff_id', '=', staff.id)
      .where('used_at', 'is', null)
      .execute()
    await trx
      .insertInto('staff_invitations')
      .values({
        tenant_id: staff.tenantId,
        id: invitationId,
        staff_id: staff.id,
        secret_hash: secretHash(secret),
        expires_at: expiresAt,
        used_at: null,
        created_at: now,
      })
      .execute()
    await recordAudit(trx, {
      tenantId: staff.tenantId,
      actor,
      action: 'staff.invite',
      target: { kind: 'staff', id: staff.id },
      outcome: 'success',
      details: { invitationId, expiresAt: expiresAt.toISOString() },
    })
  })
  const url = `${options.consoleBase}/console/?tenant=${encodeURIComponent(staff.tenantId)}#invite=${secret}`
  return { invitationId, staffId: staff.id, url, expiresAt: expiresAt.toISOString() }
}

const INVITATION_SECRET = /^sri_[A-Za-z0-9_-]{43}$/

/** The active staff member an invitation stands for, or undefined: unknown, forged, used or expired alike. */
async function invitedStaff(ctx: Ctx, tenantId: string, staffId: string | undefined) {
  if (!staffId) return undefined
  const staff = await findStaff(ctx, tenantId, { id: staffId })
  return staff?.active ? staff : undefined
}

/**
 * Whom a live invitation invites, without using it up (the page asks for the passkey options first). Any link that is
 * not a live one of this tenant, for an active member, is refused alike (`auth/invitation-invalid`).
 */
export async function peekStaffInvitation(ctx: Ctx, tenantId: string, secret: string): Promise<StaffMember> {
  const row = INVITATION_SECRET.test(secret)
    ? await ctx.db
        .selectFrom('staff_invitations')
        .select('staff_id')
        .where('tenant_id', '=', tenantId)
        .where('secret_hash', '=', secretHash(secret))
        .where('used_at', 'is', null)
        .where('expires_at', '>', new Date())
        .executeTakeFirst()
    : undefined
  const staff = await invitedStaff(ctx, tenantId, row?.staff_id)
  if (!staff) throw new Problem('auth/invitation-invalid')
  return staff
}

/**
 * Uses an invitation up, atomically: of two requests with one link, one gets the member and the other is refused, as
 * is a link unknown, forged, used, expired or of a deactivated member. It is used before the passkey is checked, so a
 * failed registration burns it too (the administrator sends a new one).
 */
export async function useStaffInvitation(
  ctx: Ctx,
  tenantId: string,
  secret: string,
): Promise<StaffMember & { invitationId: string }> {
  const row = INVITATION_SECRET.test(secret)
    ? await ctx.db
        .updateTable('staff_invitations')
        .set({ used_at: new Date() })
        .where('tenant_id', '=', tenantId)
        .where('secret_hash', '=', secretHash(secret))
        .where('used_at', 'is', null)
        .where('expires_at', '>', new Date())
        .returning(['id', 'staff_id'])
        .executeTakeFirst()
    : undefined
  const staff = await invitedStaff(ctx, tenantId, row?.staff_id)
  if (!staff || !row) throw new Problem('auth/invitation-invalid')
  return { ...staff, invitationId: row.id }
}

/** Invitations past their expiry, used or not: removed by housekeeping. */
export async function purgeExpiredStaffInvitations(ctx: Ctx): Promise<void> {
  await ctx.db.deleteFrom('staff_invitations').where('expires_at', '<', new Date()).execute()
}
