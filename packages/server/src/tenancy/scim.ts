import type { Actor } from '../audit/events.ts'
import { recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { type Role, roles } from '../platform/http/roles.ts'
import { loadTenantPolicy, saveTenantPolicy } from './policies.ts'
import { applyStaffActive, createStaff, isUniqueViolation } from './staff.ts'
import { publishStaffRevoked } from './staff-events.ts'

type Ctx = Pick<ServerContext, 'db' | 'bus'>

export const SCIM_USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User'
export const SCIM_ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error'
export const SCIM_LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse'
export const SCIM_PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp'

/** A SCIM protocol error (RFC 7644 §3.12): answered in SCIM's own error format, with its `scimType`. */
export class ScimError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    readonly scimType: 'invalidFilter' | 'invalidValue' | 'invalidPath' | 'invalidSyntax' | 'uniqueness' | undefined,
    readonly detail: string,
  ) {
    super(detail)
    this.name = 'ScimError'
  }
}

/** The user as the identity provider sees it: userName is the staff member's name; roles hold their one role. */
export interface ScimUser {
  schemas: string[]
  id: string
  externalId?: string
  userName: string
  displayName?: string
  active: boolean
  roles: { value: string; primary: boolean }[]
  meta: { resourceType: 'User'; created: string; lastModified: string; location: string }
}

/** What the identity provider sets: the role comes from its `roles` values through the tenant's mapping. */
export interface ScimUserInput {
  userName: string
  externalId?: string | undefined
  displayName?: string | undefined
  active: boolean
  roles: { value: string; primary?: boolean | undefined }[]
}

const columns = [
  'id',
  'tenant_id',
  'name',
  'role',
  'external_id',
  'display_name',
  'deactivated_at',
  'created_at',
  'updated_at',
] as const

type StaffRow = {
  id: string
  tenant_id: string
  name: string
  role: Role
  external_id: string | null
  display_name: string | null
  deactivated_at: Date | null
  created_at: Date
  updated_at: Date | null
}

function scimUserOf(row: StaffRow, base: string): ScimUser {
  return {
    schemas: [SCIM_USER_SCHEMA],
    id: row.id,
    ...(row.external_id === null ? {} : { externalId: row.external_id }),
    userName: row.name,
    ...(row.display_name === null ? {} : { displayName: row.display_name }),
    active: row.deactivated_at === null,
    roles: [{ value: row.role, primary: true }],
    meta: {
      resourceType: 'User',
      created: new Date(row.created_at).toISOString(),
      lastModified: new Date(row.updated_at ?? row.created_at).toISOString(),
      location: `${base}/scim/v2/Users/${row.id}`,
    },
  }
}

/** Which values of the identity provider's `roles` stand for which role (`PUT /v1/policies/scim-roles`). */
export interface ScimRolePolicy {
  roles: Record<string, Role>
}

const SCIM_ROLE_POLICY = 'scim-roles'

/** Without a mapping, a value that names a role (agent, supervisor, compliance, admin) is that role. */
export async function loadScimRolePolicy(ctx: Pick<Ctx, 'db'>, tenantId: string): Promise<ScimRolePolicy> {
  return (
    (await loadTenantPolicy<ScimRolePolicy>(ctx, tenantId, SCIM_ROLE_POLICY)) ?? {
      roles: Object.fromEntries(roles.map((role) => [role, role])),
    }
  )
}

export async function saveScimRolePolicy(
  ctx: Pick<Ctx, 'db'>,
  tenantId: string,
  policy: ScimRolePolicy,
  actor: Actor,
): Promise<void> {
  await ctx.db.transaction().execute(async (trx) => {
    await saveTenantPolicy({ db: trx }, tenantId, SCIM_ROLE_POLICY, policy, `${actor.kind}:${actor.id}`)
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'policy.scim-roles.update',
      outcome: 'success',
      details: { values: Object.keys(policy.roles).length },
    })
  })
}

/**
 * The one role the identity provider's values (SCIM roles, or an ID token's role or group claim) map to: the primary
 * value's if it maps, else the single role the mapped values agree on; `none` when no value maps and `several` when
 * they name several roles and none is primary. Nobody gets a role by accident.
 */
export function mappedRole(
  values: readonly { value: string; primary?: boolean | undefined }[],
  policy: ScimRolePolicy,
): Role | 'none' | 'several' {
  const mapped = values
    .map((v) => ({
      role: Object.hasOwn(policy.roles, v.value) ? policy.roles[v.value] : undefined,
      primary: v.primary,
    }))
    .filter((v): v is { role: Role; primary: boolean | undefined } => v.role !== undefined)
  const primary = mapped.find((v) => v.primary === true)
  if (primary) return primary.role
  const distinct = [...new Set(mapped.map((v) => v.role))]
  if (distinct.length === 1) return distinct[0] as Role
  return distinct.length === 0 ? 'none' : 'several'
}

function roleOf(values: ScimUserInput['roles'], policy: ScimRolePolicy): Role {
  const role = mappedRole(values, policy)
  if (role === 'none') {
    throw new ScimError(
      400,
      'invalidValue',
      'no value of roles maps to a Strongroom role (PUT /v1/policies/scim-roles)',
    )
  }
  if (role === 'several')
    throw new ScimError(400, 'invalidValue', 'roles map to several Strongroom roles: mark one primary')
  return role
}

/** The user's row, not deleted; with `lock`, locked until the caller's transaction ends. */
async function userRow(ctx: Pick<Ctx, 'db'>, tenantId: string, id: string, lock = false): Promise<StaffRow> {
  const select = ctx.db
    .selectFrom('staff')
    .select(columns)
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .where('deleted_at', 'is', null)
  const row = await (lock ? select.forUpdate() : select).executeTakeFirst()
  if (!row) throw new ScimError(404, undefined, `no user ${id}`)
  return row
}

export async function getScimUser(ctx: Pick<Ctx, 'db'>, tenantId: string, id: string, base: string) {
  return scimUserOf(await userRow(ctx, tenantId, id), base)
}

/**
 * The filters identity providers send to find a user before creating it: `userName eq "…"` or `externalId eq "…"`
 * (attribute names and the operator case-insensitive, RFC 7644 §3.4.2.2). Anything else is refused as invalidFilter.
 */
export function parseScimFilter(filter: string): { attribute: 'name' | 'external_id'; value: string } {
  const match = /^\s*(userName|externalId)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$/i.exec(filter)
  if (!match) throw new ScimError(400, 'invalidFilter', 'only userName eq "…" and externalId eq "…" are supported')
  let value: string
  try {
    value = JSON.parse(`"${match[2]}"`) as string
  } catch {
    throw new ScimError(400, 'invalidFilter', 'the filter value is not a valid string')
  }
  return { attribute: match[1]?.toLowerCase() === 'username' ? 'name' : 'external_id', value }
}

export async function listScimUsers(
  ctx: Pick<Ctx, 'db'>,
  tenantId: string,
  query: { filter?: string | undefined; startIndex: number; count: number },
  base: string,
) {
  let select = ctx.db.selectFrom('staff').where('tenant_id', '=', tenantId).where('deleted_at', 'is', null)
  if (query.filter !== undefined) {
    const { attribute, value } = parseScimFilter(query.filter)
    select = select.where(attribute, '=', value)
  }
  const total = await select.select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()
  const rows = await select
    .select(columns)
    .orderBy('created_at')
    .orderBy('id')
    .offset(query.startIndex - 1)
    .limit(query.count)
    .execute()
  return {
    schemas: [SCIM_LIST_SCHEMA],
    totalResults: Number(total.n),
    startIndex: query.startIndex,
    itemsPerPage: rows.length,
    Resources: rows.map((row) => scimUserOf(row, base)),
  }
}

export async function createScimUser(
  ctx: Ctx,
  tenantId: string,
  input: ScimUserInput,
  actor: Actor,
  base: string,
): Promise<ScimUser> {
  const role = roleOf(input.roles, await loadScimRolePolicy(ctx, tenantId))
  try {
    const staff = await createStaff(ctx, tenantId, { ...input, name: input.userName, role }, actor)
    return await getScimUser(ctx, tenantId, staff.id, base)
  } catch (error) {
    if (error instanceof Problem && error.kind === 'tenancy/duplicate') {
      throw new ScimError(409, 'uniqueness', `userName ${input.userName} is taken`)
    }
    throw error
  }
}

/**
 * Replaces what the identity provider sets of a user, in one transaction; a user made inactive loses every token, and
 * their streams close on every node once it commits.
 */
export async function replaceScimUser(
  ctx: Ctx,
  tenantId: string,
  id: string,
  change: (current: ScimUserInput) => ScimUserInput,
  actor: Actor,
  base: string,
): Promise<ScimUser> {
  const policy = await loadScimRolePolicy(ctx, tenantId)
  let deactivated = false
  let userName = ''
  try {
    await ctx.db.transaction().execute(async (trx) => {
      const current = await userRow({ db: trx }, tenantId, id, true)
      const next = change({
        userName: current.name,
        externalId: current.external_id ?? undefined,
        displayName: current.display_name ?? undefined,
        active: current.deactivated_at === null,
        roles: [{ value: current.role, primary: true }],
      })
      userName = next.userName
      // A user whose roles were not changed keeps their role, whatever the mapping says of its name.
      const role = sameRoles(next, current.role) ? current.role : roleOf(next.roles, policy)
      await trx
        .updateTable('staff')
        .set({
          name: next.userName,
          role,
          external_id: next.externalId ?? null,
          display_name: next.displayName ?? null,
          updated_at: new Date(),
        })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .execute()
      if (role !== current.role || next.userName !== current.name) {
        await recordAudit(trx, {
          tenantId,
          actor,
          action: 'staff.update',
          target: { kind: 'staff', id },
          outcome: 'success',
          details: { role, ...(next.userName === current.name ? {} : { renamed: true }) },
        })
      }
      deactivated = (await applyStaffActive({ db: trx }, current, next.active, actor)).changed && !next.active
    })
  } catch (error) {
    if (isUniqueViolation(error)) throw new ScimError(409, 'uniqueness', `userName ${userName} is taken`)
    throw error
  }
  if (deactivated) publishStaffRevoked(ctx.bus, { tenantId, staffId: id })
  return getScimUser(ctx, tenantId, id, base)
}

const sameRoles = (next: ScimUserInput, role: Role) =>
  next.roles.length === 1 && next.roles[0]?.value === role && next.roles[0].primary === true

/** Deletes a user for the identity provider: deactivated (tokens and streams ended) and hidden, kept for the audit. */
export async function deleteScimUser(ctx: Ctx, tenantId: string, id: string, actor: Actor): Promise<void> {
  await ctx.db.transaction().execute(async (trx) => {
    const current = await userRow({ db: trx }, tenantId, id, true)
    await applyStaffActive({ db: trx }, current, false, actor)
    await trx
      .updateTable('staff')
      .set({ deleted_at: new Date() })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .execute()
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'staff.delete',
      target: { kind: 'staff', id },
      outcome: 'success',
      details: {},
    })
  })
  publishStaffRevoked(ctx.bus, { tenantId, staffId: id })
}

/** Booleans as identity providers send them: Entra ID sends "True" and "False" as strings in PATCH. */
function booleanOf(value: unknown, path: string): boolean {
  if (typeof value === 'boolean') return value
  if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true'
  throw new ScimError(400, 'invalidValue', `${path} must be a boolean`)
}

function stringOf(value: unknown, path: string, optional: boolean): string | undefined {
  if (optional && (value === null || value === undefined)) return undefined
  if (typeof value === 'string' && value.length > 0 && value.length <= 200) return value
  throw new ScimError(400, 'invalidValue', `${path} must be a string of 1 to 200 characters`)
}

function rolesOf(value: unknown): ScimUserInput['roles'] {
  const list = Array.isArray(value) ? value : [value]
  return list.map((entry) => {
    if (typeof entry === 'string') return { value: entry }
    const role = entry as { value?: unknown; primary?: unknown }
    const text = stringOf(role?.value, 'roles.value', false) as string
    return role.primary === undefined ? { value: text } : { value: text, primary: booleanOf(role.primary, 'primary') }
  })
}

/** One attribute of a PATCH (`path` given, or each key of a value without one); what Strongroom does not keep is let be. */
function applyAttribute(user: ScimUserInput, path: string, value: unknown, remove: boolean): void {
  switch (path.toLowerCase()) {
    case 'username':
      if (remove) throw new ScimError(400, 'invalidValue', 'userName is required')
      user.userName = stringOf(value, 'userName', false) as string
      return
    case 'externalid':
      user.externalId = remove ? undefined : stringOf(value, 'externalId', true)
      return
    case 'displayname':
      user.displayName = remove ? undefined : stringOf(value, 'displayName', true)
      return
    case 'active':
      user.active = remove ? false : booleanOf(value, 'active')
      return
    case 'roles':
      if (remove) throw new ScimError(400, 'invalidValue', 'a user needs a role')
      user.roles = rolesOf(value)
      return
  }
}

export interface ScimPatchOperation {
  op: string
  path?: string | undefined
  value?: unknown
}

/** Applies a PATCH's operations (RFC 7644 §3.5.2; `op` case-insensitive, as Entra ID sends "Replace") to a user. */
export function patchScimUser(current: ScimUserInput, operations: ScimPatchOperation[]): ScimUserInput {
  const user = { ...current }
  for (const operation of operations) {
    const op = operation.op.toLowerCase()
    if (op !== 'add' && op !== 'replace' && op !== 'remove') {
      throw new ScimError(400, 'invalidSyntax', `unknown op ${operation.op}`)
    }
    if (operation.path !== undefined) {
      if (!/^[A-Za-z][\w.:-]*$/.test(operation.path)) {
        throw new ScimError(400, 'invalidPath', `unsupported path ${operation.path}`)
      }
      applyAttribute(user, operation.path, operation.value, op === 'remove')
      continue
    }
    if (op === 'remove' || typeof operation.value !== 'object' || operation.value === null) {
      throw new ScimError(400, 'invalidSyntax', 'an operation without a path needs an object value')
    }
    for (const [path, value] of Object.entries(operation.value)) applyAttribute(user, path, value, false)
  }
  return user
}
