import { STAFF_TOKEN_MAX_SECONDS, type StaffMember, type StaffTokenPolicy } from '@strongroom/sdk/protocol'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import type { StaffPrincipal } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { type Role, roleScopes, type Scope } from '../platform/http/roles.ts'
import { newId, newSecret, secretHash } from '../platform/ids.ts'
import { loadTenantPolicy, saveTenantPolicy } from './policies.ts'

/** Defined with the other principals in platform/http, where the access rules need it; exported here for callers. */
export type { StaffPrincipal }

type Ctx = Pick<ServerContext, 'db'>

export function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: string }).code === '23505'
}

export async function createStaff(
  ctx: Ctx,
  tenantId: string,
  input: {
    name: string
    role: Role
    /** Provisioned by the bank's identity provider: its id for the user, the name people see, and whether active. */
    externalId?: string | undefined
    displayName?: string | undefined
    active?: boolean | undefined
    /** Provisioned before any group gave them a role: `role` is then only stored, and no token is issued. */
    roleless?: boolean | undefined
  },
  actor: Actor,
): Promise<StaffMember> {
  const id = newId('stf')
  const { name, role } = input
  const now = new Date()
  const active = input.active ?? true
  try {
    await ctx.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('staff')
        .values({
          tenant_id: tenantId,
          id,
          name,
          role,
          created_at: now,
          updated_at: now,
          external_id: input.externalId ?? null,
          display_name: input.displayName ?? null,
          deactivated_at: active ? null : now,
          roleless_at: input.roleless ? now : null,
        })
        .execute()
      await recordAudit(trx, {
        tenantId,
        actor,
        action: 'staff.create',
        target: { kind: 'staff', id },
        outcome: 'success',
        details: { role: input.roleless ? null : role, ...(active ? {} : { active }) },
      })
    })
  } catch (error) {
    if (isUniqueViolation(error)) throw new Problem('tenancy/duplicate', 'a staff member with this name exists')
    throw error
  }
  return { id, tenantId, name, role: input.roleless ? null : role, active }
}

/**
 * A staff member of the tenant, by id or by name. One the identity provider deleted (SCIM) is gone: their row is kept
 * for the audit log only, and nothing finds, lists, assigns, reactivates or issues anything to them.
 */
export async function findStaff(
  ctx: Ctx,
  tenantId: string,
  by: { id: string } | { name: string },
): Promise<StaffMember | undefined> {
  const row = await ctx.db
    .selectFrom('staff')
    .select(['id', 'tenant_id', 'name', 'role', 'deactivated_at', 'roleless_at'])
    .where('tenant_id', '=', tenantId)
    .where('deleted_at', 'is', null)
    .where('id' in by ? 'id' : 'name', '=', 'id' in by ? by.id : by.name)
    .executeTakeFirst()
  return row && staffMemberOf(row)
}

/** A staff member who can work now: active and holding a role. */
export type WorkingStaffMember = StaffMember & { role: Role }

/**
 * Whether a staff member can do what is asked of them now: yes, with the member, or no, with the problem a request
 * asking it would be refused with and why (naming them and what they cannot do).
 */
export type StaffFitness =
  | { fit: true; staff: WorkingStaffMember }
  | { fit: false; problem: 'request/not-found' | 'request/invalid'; reason: string }

/**
 * Whether a staff member of the tenant can work now: there (deleted ones are not, `findStaff`), neither deactivated nor
 * left without a role by their groups, since such a member's tokens are revoked and none is issued to them. `refused`
 * says what they could not do: `join conversations`.
 */
async function fitnessToWork(ctx: Ctx, tenantId: string, staffId: string, refused: string): Promise<StaffFitness> {
  const staff = await findStaff(ctx, tenantId, { id: staffId })
  if (!staff) return { fit: false, problem: 'request/not-found', reason: 'no such staff member' }
  if (!staff.active) {
    return { fit: false, problem: 'request/invalid', reason: `${staff.name} is deactivated and cannot ${refused}` }
  }
  if (staff.role === null) {
    return { fit: false, problem: 'request/invalid', reason: `${staff.name} holds no role and cannot ${refused}` }
  }
  return { fit: true, staff: { ...staff, role: staff.role } }
}

function refuseUnfit(fitness: StaffFitness): WorkingStaffMember {
  if (!fitness.fit) throw new Problem(fitness.problem, fitness.reason)
  return fitness.staff
}

/** A staff member who can work now (`fitnessToWork`), or refused: 404, or 400 saying why. A conversation's members. */
export async function workingStaff(
  ctx: Ctx,
  tenantId: string,
  staffId: string,
  refused: string,
): Promise<WorkingStaffMember> {
  return refuseUnfit(await fitnessToWork(ctx, tenantId, staffId, refused))
}

/**
 * Whether a staff member of the tenant can be given conversations now: one who can work (`fitnessToWork`), of a role
 * that answers conversations (`conversations:write`: not compliance). Answered rather than refused, for work that goes
 * on without them when they cannot, such as a customer's pivot through a link they sent before they left.
 */
export async function canTakeConversations(ctx: Ctx, tenantId: string, staffId: string): Promise<StaffFitness> {
  const fitness = await fitnessToWork(ctx, tenantId, staffId, 'take conversations')
  if (fitness.fit && !roleScopes[fitness.staff.role].includes('conversations:write')) {
    const reason = `a staff member with the ${fitness.staff.role} role cannot answer conversations`
    return { fit: false, problem: 'request/invalid', reason }
  }
  return fitness
}

/**
 * A staff member who can be given conversations now (`canTakeConversations`), or refused: 404, or 400 saying why. Both
 * a new conversation's assignee and a reassignment.
 */
export async function assignableStaff(ctx: Ctx, tenantId: string, staffId: string): Promise<WorkingStaffMember> {
  return refuseUnfit(await canTakeConversations(ctx, tenantId, staffId))
}

const staffMemberOf = (row: {
  id: string
  tenant_id: string
  name: string
  role: Role
  deactivated_at: Date | null
  roleless_at: Date | null
}): StaffMember => ({
  id: row.id,
  tenantId: row.tenant_id,
  name: row.name,
  // The role a member without one keeps stored is only what they held last (or a placeholder): never shown.
  role: row.roleless_at === null ? row.role : null,
  active: row.deactivated_at === null,
})

/** The tenant's staff members, by name; deactivated ones too (they may come back), deleted ones not (`findStaff`). */
export async function listStaff(ctx: Ctx, tenantId: string): Promise<StaffMember[]> {
  const rows = await ctx.db
    .selectFrom('staff')
    .select(['id', 'tenant_id', 'name', 'role', 'deactivated_at', 'roleless_at'])
    .where('tenant_id', '=', tenantId)
    .where('deleted_at', 'is', null)
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

const STAFF_TOKEN_POLICY = 'staff-tokens'

export async function loadStaffTokenPolicy(ctx: Ctx, tenantId: string): Promise<StaffTokenPolicy> {
  return (
    (await loadTenantPolicy<StaffTokenPolicy>(ctx, tenantId, STAFF_TOKEN_POLICY)) ?? {
      maxTokenSeconds: STAFF_TOKEN_MAX_SECONDS,
    }
  )
}

/** Replaces the limit (audited); tokens issued from now on live no longer. */
export async function saveStaffTokenPolicy(
  ctx: Ctx,
  tenantId: string,
  policy: StaffTokenPolicy,
  actor: Actor,
): Promise<void> {
  await ctx.db.transaction().execute(async (trx) => {
    await saveTenantPolicy({ db: trx }, tenantId, STAFF_TOKEN_POLICY, policy, `${actor.kind}:${actor.id}`)
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'policy.staff-tokens.update',
      outcome: 'success',
      details: { maxTokenSeconds: policy.maxTokenSeconds },
    })
  })
}

/**
 * Locks a staff member's row for the rest of the transaction, refusing a deactivated (or deleted) member, or one whose
 * groups give them no role: what the transaction grants them then cannot outlive a deactivation or a role lost
 * meanwhile, which either comes first (and this refuses) or waits and revokes it too.
 */
export async function lockActiveStaff(trx: Ctx['db'], staff: Pick<StaffMember, 'tenantId' | 'id'>): Promise<void> {
  const current = await trx
    .selectFrom('staff')
    .select(['deactivated_at', 'roleless_at'])
    .where('tenant_id', '=', staff.tenantId)
    .where('id', '=', staff.id)
    .forUpdate()
    .executeTakeFirst()
  if (!current || current.deactivated_at !== null) {
    throw new Problem('auth/forbidden', 'this staff member is deactivated')
  }
  if (current.roleless_at !== null) throw new Problem('auth/forbidden', 'this staff member holds no role')
}

/**
 * Issues an opaque API token for a staff member, limited to the scopes asked for (default: all of the role's) and
 * never more than the role allows, living no longer than the tenant's policy allows (a longer lifetime is cut to it).
 * Only its hash is stored; the token is shown once. A token issued on a sign-in (a passkey) says so in the audit log,
 * naming the credential that stood behind it. A deactivated member gets none: their row is locked while the token is
 * written, so a deactivation running meanwhile either comes first (and this refuses) or revokes this token too.
 */
export async function issueStaffToken(
  ctx: Ctx,
  staff: StaffMember,
  options: StaffTokenOptions,
  actor: Actor,
): Promise<IssuedStaffToken> {
  return ctx.db.transaction().execute((trx) => issueStaffTokenIn(trx, staff, options, actor))
}

export interface StaffTokenOptions {
  ttlSeconds: number
  scopes?: readonly Scope[] | undefined
  /** The sign-in behind the token: a passkey (its id), or an OpenID Connect sign-in the token then continues. */
  signIn?: { method: 'passkey' | 'oidc'; id: string } | undefined
}

/** `issueStaffToken` in the caller's transaction: with writes that stand or fall with it (a console renewal's mark). */
export async function issueStaffTokenIn(
  trx: Ctx['db'],
  staff: StaffMember,
  options: StaffTokenOptions,
  actor: Actor,
): Promise<IssuedStaffToken> {
  if (staff.role === null) throw new Problem('auth/forbidden', 'this staff member holds no role')
  const allowed = roleScopes[staff.role]
  const requested = options.scopes ?? allowed
  const refused = requested.filter((s) => !allowed.includes(s))
  if (refused.length > 0)
    throw new Problem('auth/forbidden', `the ${staff.role} role cannot hold ${refused.join(', ')}`)
  const { maxTokenSeconds } = await loadStaffTokenPolicy({ db: trx }, staff.tenantId)
  const token = newSecret('srs')
  const tokenId = newId('stk')
  const expiresAt = new Date(Date.now() + Math.min(options.ttlSeconds, maxTokenSeconds) * 1000)
  const granted = [...new Set(requested)]
  await lockActiveStaff(trx, staff)
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
      sign_in_id: options.signIn?.method === 'oidc' ? options.signIn.id : null,
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
  return { token, tokenId, scopes: granted, expiresAt: expiresAt.toISOString() }
}

/** The staff principal a token stands for, or undefined when it is unknown, expired or revoked. */
export async function authenticateStaffToken(ctx: Ctx, token: string): Promise<StaffPrincipal | undefined> {
  if (!token.startsWith('srs_') || token.length > 100) return undefined
  const row = await ctx.db
    .selectFrom('staff_tokens')
    .innerJoin('staff', 'staff.id', 'staff_tokens.staff_id')
    .select([
      'staff_tokens.id',
      'staff_tokens.tenant_id',
      'staff_tokens.staff_id',
      'staff_tokens.scopes',
      'staff_tokens.expires_at',
    ])
    .select('staff.role')
    .where('staff_tokens.token_hash', '=', secretHash(token))
    .where('staff_tokens.revoked_at', 'is', null)
    .where('staff.deactivated_at', 'is', null)
    .where('staff.roleless_at', 'is', null)
    .where('staff_tokens.expires_at', '>', new Date())
    .executeTakeFirst()
  if (!row) return undefined
  const allowed = roleScopes[row.role]
  return {
    kind: 'staff',
    tenantId: row.tenant_id,
    staffId: row.staff_id,
    tokenId: row.id,
    role: row.role,
    // A role narrowed after issue narrows its tokens too.
    scopes: row.scopes.split(' ').filter((s): s is Scope => (allowed as readonly string[]).includes(s)),
    tokenExpiresAt: new Date(row.expires_at),
  }
}

/**
 * Revokes one of the tenant's staff tokens (audited): the next request with it is refused on every node. Gives the
 * staff member it belonged to, for the caller to close the streams it opened (`publishStaffRevoked`), or undefined
 * when there is no such token or it was revoked already.
 */
export async function revokeStaffToken(
  ctx: Ctx,
  tenantId: string,
  tokenId: string,
  actor: Actor,
  reason?: string,
): Promise<{ staffId: string } | undefined> {
  return ctx.db.transaction().execute(async (trx) => {
    const revoked = await trx
      .updateTable('staff_tokens')
      .set({ revoked_at: new Date() })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', tokenId)
      .where('revoked_at', 'is', null)
      .returning('staff_id')
      .executeTakeFirst()
    if (!revoked) return undefined
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'staff.token.revoke',
      target: { kind: 'staff', id: revoked.staff_id },
      outcome: 'success',
      reason,
      details: { tokenId },
    })
    return { staffId: revoked.staff_id }
  })
}

/**
 * Deactivates a staff member or makes them active again (audited). Deactivating revokes every token they hold (their
 * console sessions included) in the same transaction; the caller closes their open streams on every node
 * (`publishStaffRevoked`). Gives the member as they are now, whether anything changed, and how many tokens ended.
 */
export async function setStaffActive(
  ctx: Ctx,
  tenantId: string,
  staffId: string,
  active: boolean,
  actor: Actor,
): Promise<{ staff: StaffMember; changed: boolean; revokedTokens: number }> {
  return ctx.db.transaction().execute(async (trx) => {
    // Deactivations in a tenant take its row first, one at a time: two admins deactivating each other at once would
    // otherwise each see the other still active, and leave the bank with none.
    if (!active) await trx.selectFrom('tenants').select('id').where('id', '=', tenantId).forUpdate().execute()
    const current = await trx
      .selectFrom('staff')
      .select(['id', 'tenant_id', 'name', 'role', 'deactivated_at', 'roleless_at'])
      .where('tenant_id', '=', tenantId)
      .where('id', '=', staffId)
      .where('deleted_at', 'is', null)
      .forUpdate()
      .executeTakeFirst()
    // A member the identity provider deleted is gone: never made active again here (`findStaff`).
    if (!current) throw new Problem('request/not-found', 'no such staff member')
    if (!active && actor.kind === 'staff' && current.role === 'admin' && current.deactivated_at === null) {
      const otherAdmin = await trx
        .selectFrom('staff')
        .select('id')
        .where('tenant_id', '=', tenantId)
        .where('role', '=', 'admin')
        .where('deactivated_at', 'is', null)
        .where('roleless_at', 'is', null)
        .where('id', '<>', staffId)
        .executeTakeFirst()
      // Staff cannot lock the bank out of its own administration; the operator's CLI, which can make admins, may.
      if (!otherAdmin) throw new Problem('tenancy/last-admin')
    }
    const { changed, revokedTokens } = await applyStaffActive({ db: trx }, current, active, actor)
    const deactivated_at = changed ? (active ? null : new Date()) : current.deactivated_at
    return { staff: staffMemberOf({ ...current, deactivated_at }), changed, revokedTokens }
  })
}

/**
 * `setStaffActive` in the caller's transaction, on a member whose row it locked: with other changes to them (the
 * identity provider replacing a user) in one commit.
 */
export async function applyStaffActive(
  ctx: Ctx,
  current: { tenant_id: string; id: string; deactivated_at: Date | null },
  active: boolean,
  actor: Actor,
): Promise<{ changed: boolean; revokedTokens: number }> {
  if ((current.deactivated_at === null) === active) return { changed: false, revokedTokens: 0 }
  const now = new Date()
  const { tenant_id: tenantId, id: staffId } = current
  await ctx.db
    .updateTable('staff')
    .set({ deactivated_at: active ? null : now, updated_at: now })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', staffId)
    .execute()
  const revokedTokens = active
    ? 0
    : Number(
        (
          await ctx.db
            .updateTable('staff_tokens')
            .set({ revoked_at: now })
            .where('tenant_id', '=', tenantId)
            .where('staff_id', '=', staffId)
            .where('revoked_at', 'is', null)
            .executeTakeFirst()
        ).numUpdatedRows,
      )
  await recordAudit(ctx.db, {
    tenantId,
    actor,
    action: active ? 'staff.activate' : 'staff.deactivate',
    target: { kind: 'staff', id: staffId },
    outcome: 'success',
    details: active ? {} : { revokedTokens },
  })
  return { changed: true, revokedTokens }
}

/**
 * Gives a member whose row the caller's transaction locked another role, or none (`undefined`: their groups give them
 * none), audited. The tokens that relied on what the member lost are revoked in the same transaction, as a
 * deactivation revokes them: with no role every token, else each token holding a scope the new role lacks. Gives the
 * ids of the tokens revoked, for the caller to close the streams they opened once it commits (`publishStaffRevoked`).
 */
export async function applyStaffRole(
  ctx: Ctx,
  current: { tenant_id: string; id: string; role: Role; roleless_at: Date | null },
  role: Role | undefined,
  actor: Actor,
  reason: string,
): Promise<{ changed: boolean; revokedTokenIds: string[] }> {
  const held = current.roleless_at === null ? current.role : undefined
  if (held === role) return { changed: false, revokedTokenIds: [] }
  const now = new Date()
  const { tenant_id: tenantId, id: staffId } = current
  await ctx.db
    .updateTable('staff')
    .set({ role: role ?? current.role, roleless_at: role === undefined ? now : null, updated_at: now })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', staffId)
    .execute()
  const open = await ctx.db
    .selectFrom('staff_tokens')
    .select(['id', 'scopes'])
    .where('tenant_id', '=', tenantId)
    .where('staff_id', '=', staffId)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now)
    .execute()
  const kept: readonly string[] = role === undefined ? [] : roleScopes[role]
  const revokedTokenIds = open.filter((t) => t.scopes.split(' ').some((s) => !kept.includes(s))).map((t) => t.id)
  if (revokedTokenIds.length > 0) {
    await ctx.db
      .updateTable('staff_tokens')
      .set({ revoked_at: now })
      .where('tenant_id', '=', tenantId)
      .where('id', 'in', revokedTokenIds)
      .execute()
  }
  await recordAudit(ctx.db, {
    tenantId,
    actor,
    action: 'staff.update',
    target: { kind: 'staff', id: staffId },
    outcome: 'success',
    reason,
    details: { role: role ?? null, revokedTokens: revokedTokenIds.length },
  })
  return { changed: true, revokedTokenIds }
}
