import type { Kysely } from 'kysely'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import type { Database } from '../platform/db/schema.ts'
import { Problem } from '../platform/http/problems.ts'
import type { Role } from '../platform/http/roles.ts'
import { newId } from '../platform/ids.ts'
import {
  loadScimRolePolicy,
  mappedRole,
  parseScimFilter,
  SCIM_LIST_SCHEMA,
  ScimError,
  type ScimPatchOperation,
  type ScimRolePolicy,
  writeScimRolePolicy,
} from './scim.ts'
import { applyStaffRole, isUniqueViolation } from './staff.ts'
import { publishStaffChanged, publishStaffRevoked } from './staff-events.ts'

type Ctx = Pick<ServerContext, 'db' | 'bus'>

export const SCIM_GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group'

/** A group as the identity provider sees it (RFC 7643 §4.2); members are users, by their SCIM id. */
export interface ScimGroup {
  schemas: string[]
  id: string
  externalId?: string
  displayName: string
  members?: { value: string; display: string; $ref: string; type: 'User' }[]
  meta: { resourceType: 'Group'; created: string; lastModified: string; location: string }
}

/** What the identity provider sets of a group: its names and its members (user ids). */
export interface ScimGroupInput {
  displayName: string
  externalId?: string | undefined
  members: string[]
}

interface GroupRow {
  id: string
  display_name: string
  external_id: string | null
  created_at: Date
  updated_at: Date
}

/** A staff member's role change for the caller to announce once it commits: the tokens it revoked. */
interface Revoked {
  staffId: string
  tokenIds: string[]
}

async function groupRow(db: Kysely<Database>, tenantId: string, id: string, lock = false): Promise<GroupRow> {
  const select = db
    .selectFrom('scim_groups')
    .select(['id', 'display_name', 'external_id', 'created_at', 'updated_at'])
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
  const row = await (lock ? select.forUpdate() : select).executeTakeFirst()
  if (!row) throw new ScimError(404, undefined, `no group ${id}`)
  return row
}

async function memberIds(db: Kysely<Database>, tenantId: string, groupId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('scim_group_members')
    .select('staff_id')
    .where('tenant_id', '=', tenantId)
    .where('group_id', '=', groupId)
    .execute()
  return rows.map((row) => row.staff_id)
}

type Member = NonNullable<ScimGroup['members']>[number]

/** The members of these groups, by group id (one query for a page of groups). */
async function membersOf(
  db: Kysely<Database>,
  tenantId: string,
  groupIds: string[],
  base: string,
): Promise<Map<string, Member[]>> {
  const members = new Map<string, Member[]>(groupIds.map((id) => [id, []]))
  if (groupIds.length === 0) return members
  const rows = await db
    .selectFrom('scim_group_members')
    .innerJoin('staff', (join) =>
      join.onRef('staff.tenant_id', '=', 'scim_group_members.tenant_id').onRef('staff.id', '=', 'staff_id'),
    )
    .select(['scim_group_members.group_id', 'staff.id', 'staff.name'])
    .where('scim_group_members.tenant_id', '=', tenantId)
    .where('scim_group_members.group_id', 'in', groupIds)
    .orderBy('staff.name')
    .execute()
  for (const row of rows) {
    members.get(row.group_id)?.push({
      value: row.id,
      display: row.name,
      $ref: `${base}/scim/v2/Users/${row.id}`,
      type: 'User',
    })
  }
  return members
}

/** Groups as SCIM shows them, with their members unless left out. */
async function scimGroupsOf(
  db: Kysely<Database>,
  tenantId: string,
  rows: GroupRow[],
  base: string,
  withMembers: boolean,
): Promise<ScimGroup[]> {
  const members = withMembers
    ? await membersOf(
        db,
        tenantId,
        rows.map((row) => row.id),
        base,
      )
    : undefined
  return rows.map((row) => ({
    schemas: [SCIM_GROUP_SCHEMA],
    id: row.id,
    ...(row.external_id === null ? {} : { externalId: row.external_id }),
    displayName: row.display_name,
    ...(members ? { members: members.get(row.id) ?? [] } : {}),
    meta: {
      resourceType: 'Group',
      created: new Date(row.created_at).toISOString(),
      lastModified: new Date(row.updated_at).toISOString(),
      location: `${base}/scim/v2/Groups/${row.id}`,
    },
  }))
}

export async function getScimGroup(
  ctx: Pick<Ctx, 'db'>,
  tenantId: string,
  id: string,
  base: string,
  withMembers = true,
): Promise<ScimGroup> {
  const [group] = await scimGroupsOf(ctx.db, tenantId, [await groupRow(ctx.db, tenantId, id)], base, withMembers)
  return group as ScimGroup
}

const groupFilterAttributes = { displayName: 'display_name', externalId: 'external_id' } as const

/** Lists groups, or finds one by `displayName eq "…"` or `externalId eq "…"` (what Entra ID and Okta send). */
export async function listScimGroups(
  ctx: Pick<Ctx, 'db'>,
  tenantId: string,
  query: { filter?: string | undefined; startIndex: number; count: number; withMembers: boolean },
  base: string,
) {
  let select = ctx.db.selectFrom('scim_groups').where('tenant_id', '=', tenantId)
  if (query.filter !== undefined) {
    const { column, value } = parseScimFilter(query.filter, groupFilterAttributes)
    select = select.where(column, '=', value)
  }
  const total = await select.select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()
  const rows = await select
    .select(['id', 'display_name', 'external_id', 'created_at', 'updated_at'])
    .orderBy('created_at')
    .orderBy('id')
    .offset(query.startIndex - 1)
    .limit(query.count)
    .execute()
  const Resources = await scimGroupsOf(ctx.db, tenantId, rows, base, query.withMembers)
  return {
    schemas: [SCIM_LIST_SCHEMA],
    totalResults: Number(total.n),
    startIndex: query.startIndex,
    itemsPerPage: rows.length,
    Resources,
  }
}

/** Whether the group, by its display name or external id, stands for a role in the tenant's mapping. */
const givesRole = (group: { displayName: string; externalId?: string | undefined }, policy: ScimRolePolicy) =>
  [group.displayName, group.externalId].some((name) => name !== undefined && Object.hasOwn(policy.roles, name))

/**
 * The role a member's groups give them, by the groups' display names or external ids through the tenant's mapping:
 * undefined when none does, `several` when they give several.
 */
async function roleFromGroups(
  db: Kysely<Database>,
  tenantId: string,
  staffId: string,
  policy: ScimRolePolicy,
): Promise<Role | undefined | 'several'> {
  const groups = await db
    .selectFrom('scim_group_members')
    .innerJoin('scim_groups', (join) =>
      join
        .onRef('scim_groups.tenant_id', '=', 'scim_group_members.tenant_id')
        .onRef('scim_groups.id', '=', 'scim_group_members.group_id'),
    )
    .select(['scim_groups.display_name', 'scim_groups.external_id'])
    .where('scim_group_members.tenant_id', '=', tenantId)
    .where('scim_group_members.staff_id', '=', staffId)
    .execute()
  const values = groups.flatMap((g) => [g.display_name, ...(g.external_id === null ? [] : [g.external_id])])
  const role = mappedRole(
    values.map((value) => ({ value })),
    policy,
  )
  return role === 'none' ? undefined : role
}

/**
 * Gives each of these members (locked in id order, so that two changes never deadlock) the role their groups now give
 * them, in the caller's transaction; a member their groups would give several roles is refused through `several`
 * (nobody gets a role by accident), which throws.
 */
async function followGroups(
  db: Kysely<Database>,
  tenantId: string,
  staffIds: string[],
  policy: ScimRolePolicy,
  actor: Actor,
  reason: string,
  several: (userName: string) => Error,
): Promise<Revoked[]> {
  const revoked: Revoked[] = []
  for (const staffId of [...new Set(staffIds)].sort()) {
    const current = await db
      .selectFrom('staff')
      .select(['tenant_id', 'id', 'name', 'role', 'roleless_at'])
      .where('tenant_id', '=', tenantId)
      .where('id', '=', staffId)
      .forUpdate()
      .executeTakeFirstOrThrow()
    const role = await roleFromGroups(db, tenantId, staffId, policy)
    if (role === 'several') throw several(current.name)
    const { changed, revokedTokenIds } = await applyStaffRole({ db }, current, role, actor, reason)
    if (changed) revoked.push({ staffId, tokenIds: revokedTokenIds })
  }
  return revoked
}

const severalInGroup = (userName: string) =>
  new ScimError(400, 'invalidValue', `user ${userName} would hold several roles through their groups`)

/**
 * Writes a group's new state (`after`; undefined deletes it) over its old one (`before`; undefined creates it) in the
 * caller's transaction, then gives the members whose role may have changed the role their groups now give them: every
 * member when the group's names changed (its mapping may have), else those added and removed; none when the group
 * stands for no role before or after. Members are locked in id order, so that two changes never deadlock.
 */
async function writeGroup(
  db: Kysely<Database>,
  tenantId: string,
  id: string,
  before: ScimGroupInput | undefined,
  after: ScimGroupInput | undefined,
  actor: Actor,
  policy: ScimRolePolicy,
): Promise<Revoked[]> {
  const now = new Date()
  const wanted = [...new Set(after?.members ?? [])]
  if (wanted.length > 0) {
    const found = await db
      .selectFrom('staff')
      .select('id')
      .where('tenant_id', '=', tenantId)
      .where('id', 'in', wanted)
      .where('deleted_at', 'is', null)
      .execute()
    const known = new Set(found.map((row) => row.id))
    const unknown = wanted.find((member) => !known.has(member))
    if (unknown !== undefined) throw new ScimError(400, 'invalidValue', `no user ${unknown} to be a member`)
  }
  const had = new Set(before?.members ?? [])
  const added = wanted.filter((member) => !had.has(member))
  const removed = [...had].filter((member) => !wanted.includes(member))
  if (removed.length > 0) {
    await db
      .deleteFrom('scim_group_members')
      .where('tenant_id', '=', tenantId)
      .where('group_id', '=', id)
      .where('staff_id', 'in', removed)
      .execute()
  }
  if (!after) {
    await db.deleteFrom('scim_groups').where('tenant_id', '=', tenantId).where('id', '=', id).execute()
  } else {
    const names = { display_name: after.displayName, external_id: after.externalId ?? null, updated_at: now }
    if (before) {
      await db.updateTable('scim_groups').set(names).where('tenant_id', '=', tenantId).where('id', '=', id).execute()
    } else {
      await db
        .insertInto('scim_groups')
        .values({ tenant_id: tenantId, id, created_at: now, ...names })
        .execute()
    }
  }
  if (added.length > 0) {
    await db
      .insertInto('scim_group_members')
      .values(added.map((staffId) => ({ tenant_id: tenantId, group_id: id, staff_id: staffId })))
      .execute()
  }
  const renamed = before?.displayName !== after?.displayName || before?.externalId !== after?.externalId
  await recordAudit(db, {
    tenantId,
    actor,
    action: `scim.group.${!before ? 'create' : !after ? 'delete' : 'update'}`,
    target: { kind: 'scim-group', id },
    outcome: 'success',
    details: { added: added.length, removed: removed.length, ...(before && after && renamed ? { renamed } : {}) },
  })

  const mapped = [before, after].some((group) => group !== undefined && givesRole(group, policy))
  if (!mapped) return []
  const affected = renamed ? [...had, ...wanted] : [...added, ...removed]
  return followGroups(db, tenantId, affected, policy, actor, 'SCIM group membership', severalInGroup)
}

/**
 * Told after the commit: the streams the revoked tokens opened close on every node, and the consoles of those who
 * assign conversations read the staff whose role changed again.
 */
function announce(ctx: Pick<Ctx, 'bus'>, tenantId: string, revoked: Revoked[]): void {
  for (const { staffId, tokenIds } of revoked) {
    for (const tokenId of tokenIds) publishStaffRevoked(ctx.bus, { tenantId, staffId, tokenId })
    publishStaffChanged(ctx.bus, { tenantId, staffId })
  }
}

function uniquenessOf(error: unknown, displayName: string): unknown {
  return isUniqueViolation(error) ? new ScimError(409, 'uniqueness', `displayName ${displayName} is taken`) : error
}

/** Creates a group (audited) with its members, whose roles follow it in the same transaction. */
export async function createScimGroup(
  ctx: Ctx,
  tenantId: string,
  input: ScimGroupInput,
  actor: Actor,
  base: string,
): Promise<ScimGroup> {
  const id = newId('grp')
  const policy = await loadScimRolePolicy(ctx, tenantId)
  let revoked: Revoked[] = []
  try {
    revoked = await ctx.db
      .transaction()
      .execute((trx) => writeGroup(trx, tenantId, id, undefined, input, actor, policy))
  } catch (error) {
    throw uniquenessOf(error, input.displayName)
  }
  announce(ctx, tenantId, revoked)
  return getScimGroup(ctx, tenantId, id, base)
}

/**
 * Replaces what the identity provider sets of a group (PUT, or PATCH through `patchScimGroup`) in one transaction
 * with its members' role changes; the tokens that relied on a role lost are revoked with it, their streams closed on
 * every node once it commits.
 */
export async function changeScimGroup(
  ctx: Ctx,
  tenantId: string,
  id: string,
  change: (current: ScimGroupInput) => ScimGroupInput,
  actor: Actor,
  base: string,
): Promise<ScimGroup> {
  const policy = await loadScimRolePolicy(ctx, tenantId)
  let displayName = ''
  let revoked: Revoked[] = []
  try {
    revoked = await ctx.db.transaction().execute(async (trx) => {
      const row = await groupRow(trx, tenantId, id, true)
      const current = {
        displayName: row.display_name,
        externalId: row.external_id ?? undefined,
        members: await memberIds(trx, tenantId, id),
      }
      const next = change(current)
      displayName = next.displayName
      return writeGroup(trx, tenantId, id, current, next, actor, policy)
    })
  } catch (error) {
    throw uniquenessOf(error, displayName)
  }
  announce(ctx, tenantId, revoked)
  return getScimGroup(ctx, tenantId, id, base)
}

/** Deletes a group (audited): its members lose the role it gave them in the same transaction. */
export async function deleteScimGroup(ctx: Ctx, tenantId: string, id: string, actor: Actor): Promise<void> {
  const policy = await loadScimRolePolicy(ctx, tenantId)
  const revoked = await ctx.db.transaction().execute(async (trx) => {
    const row = await groupRow(trx, tenantId, id, true)
    const current = {
      displayName: row.display_name,
      externalId: row.external_id ?? undefined,
      members: await memberIds(trx, tenantId, id),
    }
    return writeGroup(trx, tenantId, id, current, undefined, actor, policy)
  })
  announce(ctx, tenantId, revoked)
}

const MEMBER_FILTER = /^members\[\s*value\s+eq\s+"((?:[^"\\]|\\.)*)"\s*\]$/i

/** Members as a PATCH or PUT names them: `[{"value": "<user id>"}, …]` (`display`, `$ref` and the like ignored). */
export function memberValuesOf(value: unknown): string[] {
  const list = Array.isArray(value) ? value : [value]
  return list.map((entry) => {
    const member = (typeof entry === 'object' && entry !== null ? entry : {}) as { value?: unknown }
    if (typeof member.value !== 'string' || member.value.length === 0 || member.value.length > 100) {
      throw new ScimError(400, 'invalidValue', 'members must be objects with a user id as value')
    }
    return member.value
  })
}

function textOf(value: unknown, path: string): string {
  if (typeof value === 'string' && value.length > 0 && value.length <= 200) return value
  throw new ScimError(400, 'invalidValue', `${path} must be a string of 1 to 200 characters`)
}

/** One attribute of a group's PATCH; what Strongroom does not keep (`id` Okta repeats, extensions) is let be. */
function applyGroupAttribute(group: ScimGroupInput, op: 'add' | 'replace' | 'remove', path: string, value: unknown) {
  const filtered = MEMBER_FILTER.exec(path)
  if (filtered) {
    if (op !== 'remove') throw new ScimError(400, 'invalidPath', 'a members filter is only supported in remove')
    let member: string
    try {
      member = JSON.parse(`"${filtered[1]}"`) as string
    } catch {
      throw new ScimError(400, 'invalidPath', 'the members filter value is not a valid string')
    }
    group.members = group.members.filter((m) => m !== member)
    return
  }
  if (!/^[A-Za-z][\w.:-]*$/.test(path)) throw new ScimError(400, 'invalidPath', `unsupported path ${path}`)
  switch (path.toLowerCase()) {
    case 'members': {
      // remove without a value removes every member (RFC 7644 §3.5.2.2); Entra ID sends the ones to remove as value.
      if (op === 'remove') {
        const gone = value === undefined ? undefined : new Set(memberValuesOf(value))
        group.members = gone ? group.members.filter((m) => !gone.has(m)) : []
      } else {
        const members = value === null ? [] : memberValuesOf(value)
        group.members = op === 'add' ? [...new Set([...group.members, ...members])] : members
      }
      return
    }
    case 'displayname':
      if (op === 'remove') throw new ScimError(400, 'invalidValue', 'displayName is required')
      group.displayName = textOf(value, 'displayName')
      return
    case 'externalid':
      group.externalId = op === 'remove' || value === null ? undefined : textOf(value, 'externalId')
      return
  }
}

/**
 * Applies a group's PATCH (RFC 7644 §3.5.2): `op` in any case (Entra ID sends "Add", "Remove", "Replace"), members
 * added and removed by value or by `members[value eq "…"]`, or replaced whole (Okta), names replaced with or without a
 * path.
 */
export function patchScimGroup(current: ScimGroupInput, operations: ScimPatchOperation[]): ScimGroupInput {
  const group = { ...current, members: [...current.members] }
  for (const operation of operations) {
    const op = operation.op.toLowerCase()
    if (op !== 'add' && op !== 'replace' && op !== 'remove') {
      throw new ScimError(400, 'invalidSyntax', `unknown op ${operation.op}`)
    }
    if (operation.path !== undefined) {
      applyGroupAttribute(group, op, operation.path, operation.value)
      continue
    }
    if (op === 'remove' || typeof operation.value !== 'object' || operation.value === null) {
      throw new ScimError(400, 'invalidSyntax', 'an operation without a path needs an object value')
    }
    for (const [path, value] of Object.entries(operation.value)) applyGroupAttribute(group, op, path, value)
  }
  return group
}

/**
 * Replaces the mapping of the identity provider's role and group values to roles (audited), and gives the members of
 * every group whose role it changes their new role in the same transaction: a group no longer mapped, or mapped to a
 * lesser role, ends the tokens that relied on the old one at once. A mapping that would give a member several roles
 * through their groups is refused, naming them.
 */
export async function saveRoleMapping(ctx: Ctx, tenantId: string, policy: ScimRolePolicy, actor: Actor): Promise<void> {
  const revoked = await ctx.db.transaction().execute(async (trx) => {
    const before = await loadScimRolePolicy({ db: trx }, tenantId)
    await writeScimRolePolicy({ db: trx }, tenantId, policy, actor)
    const roleOf = (p: ScimRolePolicy, name: string | null) =>
      name !== null && Object.hasOwn(p.roles, name) ? p.roles[name] : undefined
    const groups = await trx
      .selectFrom('scim_groups')
      .select(['id', 'display_name', 'external_id'])
      .where('tenant_id', '=', tenantId)
      .execute()
    const remapped = groups
      .filter((g) => [g.display_name, g.external_id].some((name) => roleOf(before, name) !== roleOf(policy, name)))
      .map((g) => g.id)
    if (remapped.length === 0) return []
    const members = await trx
      .selectFrom('scim_group_members')
      .select('staff_id')
      .where('tenant_id', '=', tenantId)
      .where('group_id', 'in', remapped)
      .execute()
    return followGroups(
      trx,
      tenantId,
      members.map((m) => m.staff_id),
      policy,
      actor,
      'role mapping changed',
      (userName) =>
        new Problem('request/invalid', `the mapping would give ${userName} several roles through their groups`),
    )
  })
  announce(ctx, tenantId, revoked)
}
