import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import type { StaffPrincipal } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { type Role, roleScopes, type Scope } from '../platform/http/roles.ts'
import { newId, newSecret, secretHash } from '../platform/ids.ts'

export interface StaffMember {
  id: string
  tenantId: string
  name: string
  role: Role
}

/** Defined with the other principals in platform/http, where the access rules need it; exported here for callers. */
export type { StaffPrincipal }

type Ctx = Pick<ServerContext, 'db'>

function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: string }).code === '23505'
}

export async function createStaff(
  ctx: Ctx,
  tenantId: string,
  input: { name: string; role: Role },
  actor: Actor,
): Promise<StaffMember> {
  const id = newId('stf')
  const { name, role } = input
  try {
    await ctx.db.transaction().execute(async (trx) => {
      await trx.insertInto('staff').values({ tenant_id: tenantId, id, name, role, created_at: new Date() }).execute()
      await recordAudit(trx, {
        tenantId,
        actor,
        action: 'staff.create',
        target: { kind: 'staff', id },
        outcome: 'success',
        details: { role },
      })
    })
  } catch (error) {
    if (isUniqueViolation(error)) throw new Problem('tenancy/duplicate', 'a staff member with this name exists')
    throw error
  }
  return { id, tenantId, name, role }
}

/** A staff member of the tenant, by id or by name. */
export async function findStaff(
  ctx: Ctx,
  tenantId: string,
  by: { id: string } | { name: string },
): Promise<StaffMember | undefined> {
  const row = await ctx.db
    .selectFrom('staff')
    .select(['id', 'tenant_id', 'name', 'role'])
    .where('tenant_id', '=', tenantId)
    .where('id' in by ? 'id' : 'name', '=', 'id' in by ? by.id : by.name)
    .executeTakeFirst()
  return row && staffMemberOf(row)
}

const staffMemberOf = (row: { id: string; tenant_id: string; name: string; role: Role }): StaffMember => ({
  id: row.id,
  tenantId: row.tenant_id,
  name: row.name,
  role: row.role,
})

/** The tenant's staff members, by name. */
export async function listStaff(ctx: Ctx, tenantId: string): Promise<StaffMember[]> {
  const rows = await ctx.db
    .selectFrom('staff')
    .select(['id', 'tenant_id', 'name', 'role'])
    .where('tenant_id', '=', tenantId)
    .orderBy('name')
    .execute()
  return rows.map(staffMemberOf)
}

export interface IssuedStaffToken {
  token: string
  tokenId: string
  scopes: Scope[]
  expiresAt: string
}

/**
 * Issues an opaque API token for a staff member, limited to the scopes asked for (default: all of the role's) and
 * never more than the role allows. Only its hash is stored; the token is shown once. A token issued on a sign-in
 * (a passkey) says so in the audit log, naming the credential that stood behind it.
 */
export async function issueStaffToken(
  ctx: Ctx,
  staff: StaffMember,
  options: {
    ttlSeconds: number
    scopes?: readonly Scope[] | undefined
    signIn?: { method: 'passkey'; id: string } | undefined
  },
  actor: Actor,
): Promise<IssuedStaffToken> {
  const allowed = roleScopes[staff.role]
  const requested = options.scopes ?? allowed
  const refused = requested.filter((s) => !allowed.includes(s))
  if (refused.length > 0)
    throw new Problem('auth/forbidden', `the ${staff.role} role cannot hold ${refused.join(', ')}`)
  const token = newSecret('srs')
  const tokenId = newId('stk')
  const expiresAt = new Date(Date.now() + options.ttlSeconds * 1000)
  const granted = [...new Set(requested)]
  await ctx.db.transaction().execute(async (trx) => {
    await trx
      .insertInto('staff_tokens')
      .values({
        tenant_id: staff.tenantId,
        id: tokenId,
        staff_id: staff.id,
        token_hash: secretHash(token),
        scopes: granted.join(' '),
        expires_at: expiresAt,
        revoked_at: null,
        created_at: new Date(),
      })
      .execute()
    await recordAudit(trx, {
      tenantId: staff.tenantId,
      actor,
      action: 'staff.token.issue',
      target: { kind: 'staff', id: staff.id },
      outcome: 'success',
      details: {
        tokenId,
        scopes: granted,
        expiresAt: expiresAt.toISOString(),
        ...(options.signIn ? { signIn: options.signIn.method, credential: options.signIn.id } : {}),
      },
    })
  })
  return { token, tokenId, scopes: granted, expiresAt: expiresAt.toISOString() }
}

/** The staff principal a token stands for, or undefined when it is unknown, expired or revoked. */
export async function authenticateStaffToken(ctx: Ctx, token: string): Promise<StaffPrincipal | undefined> {
  if (!token.startsWith('srs_') || token.length > 100) return undefined
  const row = await ctx.db
    .selectFrom('staff_tokens')
    .innerJoin('staff', 'staff.id', 'staff_tokens.staff_id')
    .select(['staff_tokens.tenant_id', 'staff_tokens.staff_id', 'staff_tokens.scopes', 'staff_tokens.expires_at'])
    .select('staff.role')
    .where('staff_tokens.token_hash', '=', secretHash(token))
    .where('staff_tokens.revoked_at', 'is', null)
    .where('staff_tokens.expires_at', '>', new Date())
    .executeTakeFirst()
  if (!row) return undefined
  const allowed = roleScopes[row.role]
  return {
    kind: 'staff',
    tenantId: row.tenant_id,
    staffId: row.staff_id,
    role: row.role,
    // A role narrowed after issue narrows its tokens too.
    scopes: row.scopes.split(' ').filter((s): s is Scope => (allowed as readonly string[]).includes(s)),
    tokenExpiresAt: new Date(row.expires_at),
  }
}

export async function revokeStaffToken(ctx: Ctx, tenantId: string, tokenId: string): Promise<boolean> {
  const result = await ctx.db
    .updateTable('staff_tokens')
    .set({ revoked_at: new Date() })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', tokenId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
  return result.numUpdatedRows > 0n
}
