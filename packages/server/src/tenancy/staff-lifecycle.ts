import type { StaffMember } from '@strongroom/sdk/protocol'
import type { Actor } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { createStaff, revokeStaffToken, setStaffActive } from './staff.ts'
import { publishStaffChanged, publishStaffRevoked } from './staff-events.ts'

type Ctx = Pick<ServerContext, 'db' | 'bus'>

/**
 * Adds a staff member (`createStaff`) and tells the consoles of those who assign conversations, whose staff lists
 * then read them. With a context whose bus waits for the caller's commit (`idempotent`), it is told after that.
 */
export async function addStaff(
  ctx: Ctx,
  tenantId: string,
  input: Parameters<typeof createStaff>[2],
  actor: Actor,
): Promise<StaffMember> {
  const staff = await createStaff(ctx, tenantId, input, actor)
  publishStaffChanged(ctx.bus, { tenantId, staffId: staff.id })
  return staff
}

/**
 * Revokes one staff token (audited) and closes the streams it opened on every node. With `staffId`, only a token of
 * that member: another's is answered as not found. Revoking a revoked token changes nothing.
 */
export async function endStaffToken(
  ctx: Ctx,
  tenantId: string,
  token: { tokenId: string; staffId?: string | undefined },
  actor: Actor,
): Promise<void> {
  const owner = await ctx.db
    .selectFrom('staff_tokens')
    .select('staff_id')
    .where('tenant_id', '=', tenantId)
    .where('id', '=', token.tokenId)
    .executeTakeFirst()
  if (!owner || (token.staffId !== undefined && owner.staff_id !== token.staffId)) {
    throw new Problem('request/not-found', 'no such staff token')
  }
  // Told after the commit, so that a console reconnecting at once finds the token revoked.
  const revoked = await revokeStaffToken(ctx, tenantId, token.tokenId, actor)
  if (revoked) publishStaffRevoked(ctx.bus, { tenantId, staffId: revoked.staffId, tokenId: token.tokenId })
}

/**
 * Deactivates a staff member (every token and console session ends, their streams close on every node) or makes them
 * active again; either way the consoles of those who assign conversations are told. Gives the member as they are now.
 */
export async function changeStaffActive(
  ctx: Ctx,
  tenantId: string,
  staffId: string,
  active: boolean,
  actor: Actor,
): Promise<StaffMember> {
  const { staff, changed } = await setStaffActive(ctx, tenantId, staffId, active, actor)
  if (changed && !active) publishStaffRevoked(ctx.bus, { tenantId, staffId })
  if (changed) publishStaffChanged(ctx.bus, { tenantId, staffId })
  return staff
}
