import type { Actor } from '../audit/events.ts'
import { recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { type Role, roles } from '../platform/http/roles.ts'
import { loadTenantPolicy, saveTenantPolicy } from './policies.ts'
import { applyStaffActive, applyStaffRole, isUniqueViolation } from './staff.ts'
import { publishStaffChanged, publishStaffRevoked } from './staff-events.ts'
import { addStaff } from './staff-lifecycle.ts'

type Ctx = Pick<ServerContext, 'db' | 'bus'>

export const SCIM_USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User'
export const SCIM_ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error'
export const SCIM_LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse'
export const SCIM_PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp'

/** A SCIM protocol error (RFC 7644 §3.12): answered in SCIM's own error format, with its `scimType`. */
export class ScimError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    readonly scimType:
      | 'invalidFilter'
      | 'invalidValue'
      | 'invalidPath'
      | 'invalidSyntax'
      | 'uniqueness'
      | 'mutability'
      | undefined,
    readonly detail: string,
  ) {
    super(detail)
    this.name = 'ScimError'
  }
}

/**
 * The user as the identity provider sees it: userName is the staff member's name; roles hold their one role (none
 * while their groups give them none); groups, read-only, the groups they are a member of.
 */
export interface ScimUser {
  schemas: string[]
  id: string
  externalId?: string
  userName: string
  displayName?: string
  active: boolean
  roles: { value: string; primary: boolean }[]
  groups?: ScimUserGroup[]
  meta: { resourceType: 'User'; created: string; lastModified: string; location: string }
}

/** A group a user is in, as SCIM shows it on the user (RFC 7643 §4.1.2: read-only, changed through the group). */
export interface ScimUserGroup {
  value: string
  display: string
  $ref: string
  type: 'direct'
}

/**
 * What the identity provider sets: the role comes from its `roles` values through the tenant's mapping; with none, the
 * user holds no role until a group gives them one.
 */
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
  'roleless_at',
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
  roleless_at: Date | null
  created_at: Date
  updated_at: Date | null
}

function scimUserOf(row: StaffRow, groups: ScimUserGroup[], base: string): ScimUser {
  return {
    schemas: [SCIM_USER_SCHEMA],
    id: row.id,
    ...(row.external_id === null ? {} : { externalId: row.external_id }),
    userName: row.name,
    ...(row.display_name === null ? {} : { displayName: row.display_name }),
    active: row.deactivated_at === null,
    roles: row.roleless_at === null ? [{ value: row.role, primary: true }] : [],
    ...(groups.length === 0 ? {} : { groups }),
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

/** Saves the mapping (audited) in the caller's transaction; `saveRoleMapping` also gives group members their new role. */
export async function writeScimRolePolicy(
  ctx: Pick<Ctx, 'db'>,
  tenantId: string,
  policy: ScimRolePolicy,
  actor: Actor,
): Promise<void> {
  await saveTenantPolicy(ctx, tenantId, SCIM_ROLE_POLICY, policy, `${actor.kind}:${actor.id}`)
  await recordAudit(ctx.db, {
    tenantId,
    actor,
    action: 'policy.scim-roles.update',
    outcome: 'success',
    details: { values: Object.keys(policy.roles).length },
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

/** The groups each of these users is in, by user id. */
async function groupsOfUsers(
  ctx: Pick<Ctx, 'db'>,
  tenantId: string,
  ids: string[],
  base: string,
): Promise<Map<string, ScimUserGroup[]>> {
  const groups = new Map<string, ScimUserGroup[]>(ids.map((id) => [id, []]))
  if (ids.length === 0) return groups
  const rows = await ctx.db
    .selectFrom('scim_group_members')
    .innerJoin('scim_groups', (join) =>
      join
        .onRef('scim_groups.tenant_id', '=', 'scim_group_members.tenant_id')
        .onRef('scim_groups.id', '=', 'scim_group_members.group_id'),
    )
    .select(['scim_group_members.staff_id', 'scim_groups.id', 'scim_groups.display_name'])
    .where('scim_group_members.tenant_id', '=', tenantId)
    .where('scim_group_members.staff_id', 'in', ids)
    .orderBy('scim_groups.display_name')
    .execute()
  for (const row of rows) {
    groups.get(row.staff_id)?.push({
      value: row.id,
      display: row.display_name,
      $ref: `${base}/scim/v2/Groups/${row.id}`,
      type: 'direct',
    })
  }
  return groups
}

export async function getScimUser(ctx: Pick<Ctx, 'db'>, tenantId: string, id: string, base: string) {
  const row = await userRow(ctx, tenantId, id)
  return scimUserOf(row, (await groupsOfUsers(ctx, tenantId, [id], base)).get(id) ?? [], base)
}

/**
 * The filters identity providers send to find a resource before creating it: `<attribute> eq "…"` for one of the
 * attributes given (names and the operator case-insensitive, RFC 7644 §3.4.2.2), e.g. `userName eq "…"` for users and
 * `displayName eq "…"` for groups. Gives the column the attribute is kept in. Anything else is invalidFilter.
 */
export function parseScimFilter<Column extends string>(
  filter: string,
  attributes: Record<string, Column>,
): { column: Column; value: string } {
  const match = /^\s*([A-Za-z]\w*)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$/i.exec(filter)
  const name = Object.keys(attributes).find((a) => a.toLowerCase() === match?.[1]?.toLowerCase())
  if (!match || name === undefined) {
    const supported = Object.keys(attributes).map((a) => `${a} eq "…"`)
    throw new ScimError(400, 'invalidFilter', `only ${supported.join(' and ')} are supported`)
  }
  let value: string
  try {
    value = JSON.parse(`"${match[2]}"`) as string
  } catch {
    throw new ScimError(400, 'invalidFilter', 'the filter value is not a valid string')
  }
  return { column: attributes[name] as Column, value }
}

const userFilterAttributes = { userName: 'name', externalId: 'external_id' } as const

export async function listScimUsers(
  ctx: Pick<Ctx, 'db'>,
  tenantId: string,
  query: { filter?: string | undefined; startIndex: number; count: number },
  base: string,
) {
  let select = ctx.db.selectFrom('staff').where('tenant_id', '=', tenantId).where('deleted_at', 'is', null)
  if (query.filter !== undefined) {
    const { column, value } = parseScimFilter(query.filter, userFilterAttributes)
    select = select.where(column, '=', value)
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
    Resources: await (async () => {
      const groups = await groupsOfUsers(
        ctx,
        tenantId,
        rows.map((row) => row.id),
        base,
      )
      return rows.map((row) => scimUserOf(row, groups.get(row.id) ?? [], base))
    })(),
  }
}

export async function createScimUser(
  ctx: Ctx,
  tenantId: string,
  input: ScimUserInput,
  actor: Actor,
  base: string,
): Promise<ScimUser> {
  // Without roles, a user waits for a group to give them one (identity providers that assign roles by group create
  // the user first); roles given must map.
  const roleless = input.roles.length === 0
  const role = roleless ? 'agent' : roleOf(input.roles, await loadScimRolePolicy(ctx, tenantId))
  try {
    const staff = await addStaff(ctx, tenantId, { ...input, name: input.userName, role, roleless }, actor)
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
  /** Renamed, given another role or (de)activated: what the staff lists of open consoles show. */
  let changed = false
  let revokedTokenIds: string[] = []
  let userName = ''
  try {
    await ctx.db.transaction().execute(async (trx) => {
      const current = await userRow({ db: trx }, tenantId, id, true)
      const next = change({
        userName: current.name,
        externalId: current.external_id ?? undefined,
        displayName: current.display_name ?? undefined,
        active: current.deactivated_at === null,
        roles: current.roleless_at === null ? [{ value: current.role, primary: true }] : [],
      })
      userName = next.userName
      await trx
        .updateTable('staff')
        .set({
          name: next.userName,
          external_id: next.externalId ?? null,
          display_name: next.displayName ?? null,
          updated_at: new Date(),
        })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .execute()
      if (next.userName !== current.name) {
        await recordAudit(trx, {
          tenantId,
          actor,
          action: 'staff.update',
          target: { kind: 'staff', id },
          outcome: 'success',
          details: { renamed: true },
        })
      }
      // A user whose roles were left out or not changed keeps their role (or their groups' role), whatever the
      // mapping says of its name; a role changed ends the tokens that relied on what was lost.
      if (next.roles.length > 0 && !(current.roleless_at === null && sameRoles(next, current.role))) {
        const role = roleOf(next.roles, policy)
        const applied = await applyStaffRole({ db: trx }, current, role, actor, 'SCIM user roles')
        revokedTokenIds = applied.revokedTokenIds
        changed ||= applied.changed
      }
      const activation = await applyStaffActive({ db: trx }, current, next.active, actor)
      deactivated = activation.changed && !next.active
      changed ||= activation.changed || next.userName !== current.name
    })
  } catch (error) {
    if (isUniqueViolation(error)) throw new ScimError(409, 'uniqueness', `userName ${userName} is taken`)
    throw error
  }
  if (deactivated) publishStaffRevoked(ctx.bus, { tenantId, staffId: id })
  for (const tokenId of revokedTokenIds) publishStaffRevoked(ctx.bus, { tenantId, staffId: id, tokenId })
  if (changed) publishStaffChanged(ctx.bus, { tenantId, staffId: id })
  return getScimUser(ctx, tenantId, id, base)
}

const sameRoles = (next: ScimUserInput, role: Role) =>
  next.roles.length === 1 && next.roles[0]?.value === role && next.roles[0].primary === true

/** Deletes a user for the identity provider: deactivated (tokens and streams ended) and hidden, kept for the audit. */
export async function deleteScimUser(ctx: Ctx, tenantId: string, id: string, actor: Actor): Promise<void> {
  await ctx.db.transaction().execute(async (trx) => {
    const current = await userRow({ db: trx }, tenantId, id, true)
    await applyStaffActive({ db: trx }, current, false, actor)
    // Gone from SCIM, gone from its groups (RFC 7644 §3.6).
    await trx.deleteFrom('scim_group_members').where('tenant_id', '=', tenantId).where('staff_id', '=', id).execute()
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
  publishStaffChanged(ctx.bus, { tenantId, staffId: id })
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
    case 'groups':
      throw new ScimError(400, 'mutability', "groups is read-only: change the group's members")
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
