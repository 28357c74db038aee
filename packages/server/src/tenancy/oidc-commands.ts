import { readFileSync } from 'node:fs'
import { Ajv } from 'ajv'
import { operator } from '../audit/events.ts'
import { type Command, command, out, UsageError, withStorage, withStorageAndBus } from '../platform/command.ts'
import { type Role, roles } from '../platform/http/roles.ts'
import { parseTtl } from './commands.ts'
import {
  type OidcProviderInput,
  OidcProviderInputSchema,
  removeOidcProvider,
  saveOidcProvider,
  viewOidcProvider,
} from './oidc-providers.ts'
import { saveRoleMapping } from './scim-groups.ts'
import { findTenant } from './tenants.ts'

/** `Strongroom.Agent=agent,Strongroom.Admin=admin`: the provider's values and the roles they stand for. */
function parseRoleMap(value: string): Record<string, Role> {
  const map: Record<string, Role> = {}
  for (const pair of value.split(',')) {
    const at = pair.lastIndexOf('=')
    const [claim, role] = [pair.slice(0, at).trim(), pair.slice(at + 1).trim()]
    if (at < 1 || !claim || !(roles as readonly string[]).includes(role)) {
      throw new UsageError(`--role-map takes VALUE=ROLE pairs, ROLE one of ${roles.join(', ')}`)
    }
    map[claim] = role as Role
  }
  return map
}

/** A secret read from a file, so that it is in no shell history or process list. */
function readSecretFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8').trim()
  } catch {
    throw new UsageError(`cannot read ${what} from ${file}`)
  }
}

const setOidc = command({
  name: 'staff oidc set',
  synopsis:
    '--tenant ID --issuer URL --client-id ID --auth-method METHOD\n[--client-secret-file FILE | --private-key-file FILE] [--subject-claim sub]\n[--role-claim roles] [--scopes "openid profile email"] [--session 8h]\n[--role-map VALUE=ROLE,...]',
  summary:
    "set the OpenID provider the tenant's staff sign in to the console through\n(client_secret_basic, client_secret_post or private_key_jwt; the secret or key\nfrom a file, sealed at rest; private_key_jwt without a key makes one and shows\nits public JWK to register); --role-map replaces the mapping of the provider's\nrole or group values to roles (shared with SCIM)",
  options: {
    tenant: { type: 'string' },
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    'auth-method': { type: 'string' },
    'client-secret-file': { type: 'string' },
    'private-key-file': { type: 'string' },
    'subject-claim': { type: 'string' },
    'role-claim': { type: 'string' },
    scopes: { type: 'string' },
    session: { type: 'string' },
    'role-map': { type: 'string' },
  },
  async run(values, { config }) {
    const { tenant: tenantId } = values
    if (!tenantId || !values.issuer || !values['client-id'] || !values['auth-method']) {
      throw new UsageError('staff oidc set needs --tenant, --issuer, --client-id and --auth-method')
    }
    const secretFile = values['client-secret-file']
    const keyFile = values['private-key-file']
    let privateKeyJwk: unknown
    if (keyFile) {
      try {
        privateKeyJwk = JSON.parse(readSecretFile(keyFile, 'the private key'))
      } catch (error) {
        if (error instanceof UsageError) throw error
        throw new UsageError(`${keyFile} is not a JWK (JSON)`)
      }
    }
    const input = {
      issuer: values.issuer,
      clientId: values['client-id'],
      authMethod: values['auth-method'],
      ...(secretFile ? { clientSecret: readSecretFile(secretFile, 'the client secret') } : {}),
      ...(privateKeyJwk === undefined ? {} : { privateKeyJwk }),
      ...(values['subject-claim'] ? { subjectClaim: values['subject-claim'] } : {}),
      ...(values['role-claim'] ? { roleClaim: values['role-claim'] } : {}),
      ...(values.scopes ? { scopes: values.scopes } : {}),
      ...(values.session ? { sessionSeconds: parseTtl(values.session) } : {}),
    }
    // The API's schema, with its defaults: the command takes exactly what `PUT /v1/staff-sign-in/oidc` takes.
    const validate = new Ajv({ useDefaults: true, allErrors: false }).compile(OidcProviderInputSchema)
    if (!validate(input)) {
      const [invalid] = validate.errors ?? []
      throw new UsageError(`${invalid?.instancePath.slice(1) || 'input'}: ${invalid?.message ?? 'invalid'}`)
    }
    const roleMap = values['role-map'] ? parseRoleMap(values['role-map']) : undefined
    const settings = config()
    out(
      await withStorageAndBus(settings, async ({ db, keyring, bus }) => {
        if (!(await findTenant({ db }, tenantId))) throw new UsageError(`no tenant ${tenantId}`)
        const ctx = { db, keyring, bus, config: settings }
        const provider = await saveOidcProvider(ctx, tenantId, input as OidcProviderInput, operator)
        if (roleMap) await saveRoleMapping(ctx, tenantId, { roles: roleMap }, operator)
        return { ...provider, ...(roleMap ? { roleMap } : {}) }
      }),
    )
  },
})

/** A tenant's staff sign-in through its OpenID provider, from the command line. */
export const oidcCommands: readonly Command[] = [
  setOidc,
  command({
    name: 'staff oidc show',
    synopsis: '--tenant ID',
    summary: "show the tenant's OpenID provider (never the secret; the public JWK for\nprivate_key_jwt)",
    options: { tenant: { type: 'string' } },
    async run({ tenant: tenantId }, { config }) {
      if (!tenantId) throw new UsageError('staff oidc show needs --tenant')
      const settings = config()
      out(
        await withStorage(settings, async ({ db, keyring }) => {
          const view = await viewOidcProvider({ db, keyring, config: settings }, tenantId)
          if (!view) throw new UsageError(`tenant ${tenantId} has no OpenID provider`)
          return view
        }),
      )
    },
  }),
  command({
    name: 'staff oidc remove',
    synopsis: '--tenant ID',
    summary: "remove the tenant's OpenID provider (console sessions already open run out)",
    options: { tenant: { type: 'string' } },
    async run({ tenant: tenantId }, { config }) {
      if (!tenantId) throw new UsageError('staff oidc remove needs --tenant')
      await withStorage(config(), async ({ db }) => removeOidcProvider({ db }, tenantId, operator))
      out({ removed: tenantId })
    },
  }),
]
