import { STAFF_INVITATION_MAX_SECONDS, type StaffMember } from '@strongroom/sdk/protocol'
import { operator } from '../audit/events.ts'
import { type Command, command, out, UsageError, withStorage, withStorageAndBus } from '../platform/command.ts'
import { isScope, type Role, roles, type Scope } from '../platform/http/roles.ts'
import { createStaff, findStaff, issueStaffToken } from './staff.ts'
import { consoleBaseOf, inviteStaff } from './staff-invitations.ts'
import { changeStaffActive, endStaffToken } from './staff-lifecycle.ts'
import { createTenant, findTenant, listTenants } from './tenants.ts'

export function parseTtl(value: string): number {
  const match = /^(\d+)([smhd])$/.exec(value)
  if (!match) throw new UsageError('--ttl must look like 30m, 8h or 7d')
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[match[2] as 's' | 'm' | 'h' | 'd']
  return Number(match[1]) * unit
}

/** Makes a staff member active again or deactivates them, on every node at once. */
function staffActivation(active: boolean): Command {
  const name = active ? 'staff activate' : 'staff deactivate'
  return command({
    name,
    synopsis: '--tenant ID --name NAME',
    summary: active
      ? 'make a deactivated staff member active again (they need new tokens)'
      : 'end every token and console session of a staff member on every node; no\ntoken is issued to them until `staff activate`',
    options: { tenant: { type: 'string' }, name: { type: 'string' } },
    async run({ tenant: tenantId, name: staffName }, { config }) {
      if (!tenantId || !staffName) throw new UsageError(`${name} needs --tenant and --name`)
      out(
        await withStorageAndBus(config(), async (ctx) => {
          const staff = await findStaff(ctx, tenantId, { name: staffName })
          if (!staff) throw new UsageError(`no staff member ${staffName} in tenant ${tenantId}`)
          return changeStaffActive(ctx, tenantId, staff.id, active, operator)
        }),
      )
    },
  })
}

/** The staff member of that name, made with `role` when there is none (the role checked first). */
/** The --role option, checked before any storage is opened: a usage error changes nothing, not even the schema. */
function roleOption(role: string | undefined): Role | undefined {
  if (role && !(roles as readonly string[]).includes(role)) {
    throw new UsageError(`--role must be one of ${roles.join(', ')}`)
  }
  return role as Role | undefined
}

async function staffNamed(
  ctx: Parameters<typeof findStaff>[0],
  tenantId: string,
  name: string,
  role: Role | undefined,
): Promise<StaffMember> {
  if (!(await findTenant(ctx, tenantId))) throw new UsageError(`no tenant ${tenantId}`)
  const staff = await findStaff(ctx, tenantId, { name })
  if (staff) return staff
  if (!role) throw new UsageError(`no staff member ${name}: give --role to create one`)
  return createStaff(ctx, tenantId, { name, role }, operator)
}

/** Banks, and their staff's tokens. */
export const tenancyCommands: readonly Command[] = [
  command({
    name: 'tenant create',
    synopsis: '--name NAME',
    summary: 'create a tenant (a bank) with its own data keys',
    options: { name: { type: 'string' } },
    async run({ name }, { config }) {
      if (!name) throw new UsageError('tenant create needs --name')
      out(await withStorage(config(), ({ db, keyring }) => createTenant({ db, keyring }, name, operator)))
    },
  }),
  command({
    name: 'tenant list',
    summary: 'list tenants',
    async run(_values, { config }) {
      out(await withStorage(config(), ({ db }) => listTenants({ db })))
    },
  }),
  command({
    name: 'staff token',
    synopsis: '--tenant ID --name NAME [--role ROLE] [--ttl 8h] [--scopes a,b]',
    summary: 'issue an API token (creates the staff member with --role if new)',
    options: {
      tenant: { type: 'string' },
      name: { type: 'string' },
      role: { type: 'string' },
      ttl: { type: 'string' },
      scopes: { type: 'string' },
    },
    async run(values, { config }) {
      const { tenant: tenantId, name } = values
      if (!tenantId || !name) throw new UsageError('staff token needs --tenant and --name')
      const scopes = values.scopes?.split(',').map((s) => s.trim())
      const badScope = scopes?.find((s) => !isScope(s))
      if (badScope) throw new UsageError(`unknown scope ${badScope}`)
      const ttlSeconds = parseTtl(values.ttl ?? '8h')
      const role = roleOption(values.role)
      out(
        await withStorage(config(), async ({ db }) => {
          const staff = await staffNamed({ db }, tenantId, name, role)
          const issued = await issueStaffToken(
            { db },
            staff,
            { ttlSeconds, scopes: scopes as Scope[] | undefined },
            operator,
          )
          return { staffId: staff.id, role: staff.role, ...issued }
        }),
      )
    },
  }),
  command({
    name: 'staff invite',
    synopsis: '--tenant ID --name NAME [--role ROLE] [--ttl 24h]',
    summary:
      'print a single-use console link (24 h by default, 7 d at most) with which the\nstaff member enrols a passkey and signs in: no token to paste (creates the\nstaff member with --role if new; a new link replaces earlier ones)',
    options: {
      tenant: { type: 'string' },
      name: { type: 'string' },
      role: { type: 'string' },
      ttl: { type: 'string' },
    },
    async run(values, { config }) {
      const { tenant: tenantId, name } = values
      if (!tenantId || !name) throw new UsageError('staff invite needs --tenant and --name')
      const ttlSeconds = parseTtl(values.ttl ?? '24h')
      if (ttlSeconds < 300 || ttlSeconds > STAFF_INVITATION_MAX_SECONDS) {
        throw new UsageError('--ttl must be between 5m and 7d')
      }
      const role = roleOption(values.role)
      const settings = config()
      out(
        await withStorage(settings, async ({ db }) => {
          const staff = await staffNamed({ db }, tenantId, name, role)
          const invitation = await inviteStaff(
            { db },
            staff,
            { ttlSeconds, consoleBase: consoleBaseOf(settings) },
            operator,
          )
          return { ...invitation, role: staff.role }
        }),
      )
    },
  }),
  command({
    name: 'staff revoke-token',
    synopsis: '--tenant ID --token ID',
    summary: 'revoke one staff token: refused at once, its streams closed on every node',
    options: { tenant: { type: 'string' }, token: { type: 'string' } },
    async run({ tenant: tenantId, token: tokenId }, { config }) {
      if (!tenantId || !tokenId) throw new UsageError('staff revoke-token needs --tenant and --token')
      await withStorageAndBus(config(), (ctx) => endStaffToken(ctx, tenantId, { tokenId }, operator))
      out({ revoked: tokenId })
    },
  }),
  staffActivation(false),
  staffActivation(true),
]
