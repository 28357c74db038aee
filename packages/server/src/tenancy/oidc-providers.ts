import { Type } from '@sinclair/typebox'
import { createRemoteJWKSet, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose'
import * as oidc from 'openid-client'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { oneOf } from '../platform/http/schemas.ts'
import type { FieldRef } from '../platform/keyring/keyring.ts'
import type { EncryptedColumn } from '../platform/keyring/reencrypt.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'config'>

export const oidcAuthMethods = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const
export type OidcAuthMethod = (typeof oidcAuthMethods)[number]

export const Jwk = Type.Record(Type.String(), Type.Unknown(), { description: 'a JWK' })
/** What the API and the command line take, with the defaults both apply. */
export const OidcProviderInputSchema = Type.Object(
  {
    issuer: Type.String({ pattern: '^https?://[^\\s#?]+$', maxLength: 500, description: 'the OpenID issuer URL' }),
    clientId: Type.String({ minLength: 1, maxLength: 200 }),
    authMethod: oneOf(oidcAuthMethods),
    clientSecret: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
    privateKeyJwk: Type.Optional(Jwk),
    subjectClaim: Type.String({ minLength: 1, maxLength: 100, default: 'sub' }),
    roleClaim: Type.String({ minLength: 1, maxLength: 100, default: 'roles' }),
    scopes: Type.String({ pattern: '(^| )openid( |$)', maxLength: 500, default: 'openid profile email' }),
    sessionSeconds: Type.Integer({ minimum: 300, maximum: 12 * 3600, default: 8 * 3600 }),
  },
  { additionalProperties: false },
)

/** What the bank's administrator sets (`PUT /v1/staff-sign-in/oidc`). */
export interface OidcProviderInput {
  issuer: string
  clientId: string
  authMethod: OidcAuthMethod
  /** For client_secret_basic / client_secret_post. */
  clientSecret?: string | undefined
  /** For private_key_jwt: the client's private JWK; made here when not given (then only its public half is shown). */
  privateKeyJwk?: JWK | undefined
  /** The claim naming the staff member: matched with the external id SCIM gave them (Entra ID: `oid`). */
  subjectClaim: string
  /** The claim whose values map to roles through the tenant's mapping (`roles` for app roles, `groups`). */
  roleClaim: string
  scopes: string
  /** The longest a console session lives, refreshes included, before the staff member signs in again. */
  sessionSeconds: number
}

/** The provider as the API shows it: never the secret; the public key for private_key_jwt, to register at the IdP. */
export interface OidcProviderView {
  issuer: string
  clientId: string
  authMethod: OidcAuthMethod
  subjectClaim: string
  roleClaim: string
  scopes: string
  sessionSeconds: number
  publicJwk?: JWK
  updatedAt: string
}

const credentialField = (tenantId: string): FieldRef => ({
  table: 'staff_oidc_providers',
  column: 'credential',
  rowId: tenantId,
})

/** The client secret or private key, sealed by the keyring: for `keys reencrypt` and `keys retire`. */
export const oidcProviderEncryptedColumns: EncryptedColumn[] = [
  {
    table: 'staff_oidc_providers',
    column: 'credential',
    key: ['tenant_id'],
    field: (row) => credentialField(row.tenant_id as string),
  },
]

/** Its public half, with the algorithm and key id the client assertion's header names. */
function publicHalf(privateJwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...rest } = privateJwk
  return rest
}

/**
 * Sets the tenant's OpenID provider (audited, naming no secret). A secret or key not given keeps the stored one when
 * the method is unchanged; private_key_jwt without a key makes an RS256 key pair (the widest supported) here. In
 * production the issuer must be https.
 */
export async function saveOidcProvider(
  ctx: Ctx,
  tenantId: string,
  input: OidcProviderInput,
  actor: Actor,
): Promise<OidcProviderView> {
  if (ctx.config.mode === 'production' && !input.issuer.startsWith('https://')) {
    throw new Problem('request/invalid', 'the issuer must be an https URL')
  }
  const existing = await ctx.db
    .selectFrom('staff_oidc_providers')
    .select(['auth_method', 'credential'])
    .where('tenant_id', '=', tenantId)
    .executeTakeFirst()
  const kept =
    existing?.auth_method === input.authMethod
      ? await ctx.keyring.decryptText(tenantId, credentialField(tenantId), existing.credential)
      : undefined
  let credential: string
  if (input.authMethod === 'private_key_jwt') {
    if (input.clientSecret !== undefined) throw new Problem('request/invalid', 'private_key_jwt takes no clientSecret')
    const given = input.privateKeyJwk
    if (given && (typeof given.d !== 'string' || !given.alg || !given.kid)) {
      throw new Problem('request/invalid', 'privateKeyJwk must be a private key with alg and kid')
    }
    credential = given ? JSON.stringify(given) : (kept ?? JSON.stringify(await newClientKey()))
  } else {
    if (input.privateKeyJwk !== undefined) throw new Problem('request/invalid', `${input.authMethod} takes no key`)
    const secret = input.clientSecret ?? kept
    if (!secret) throw new Problem('request/invalid', `${input.authMethod} needs a clientSecret`)
    credential = secret
  }
  const now = new Date()
  const values = {
    issuer: input.issuer,
    client_id: input.clientId,
    auth_method: input.authMethod,
    credential: await ctx.keyring.encrypt(tenantId, credentialField(tenantId), credential),
    subject_claim: input.subjectClaim,
    role_claim: input.roleClaim,
    scopes: input.scopes,
    session_seconds: input.sessionSeconds,
    updated_at: now,
  }
  await ctx.db.transaction().execute(async (trx) => {
    await trx
      .insertInto('staff_oidc_providers')
      .values({ tenant_id: tenantId, created_at: now, ...values })
      .onConflict((oc) => oc.column('tenant_id').doUpdateSet(values))
      .execute()
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'staff.oidc.configure',
      outcome: 'success',
      details: { issuer: input.issuer, clientId: input.clientId, authMethod: input.authMethod },
    })
  })
  return (await viewOidcProvider(ctx, tenantId)) as OidcProviderView
}

async function newClientKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  return { ...(await exportJWK(privateKey)), alg: 'RS256', kid: `strongroom-${Date.now().toString(36)}`, use: 'sig' }
}

/** The tenant's provider as the API shows it, or undefined. */
export async function viewOidcProvider(ctx: Ctx, tenantId: string): Promise<OidcProviderView | undefined> {
  const row = await ctx.db
    .selectFrom('staff_oidc_providers')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .executeTakeFirst()
  if (!row) return undefined
  const publicJwk =
    row.auth_method === 'private_key_jwt'
      ? publicHalf(JSON.parse(await ctx.keyring.decryptText(tenantId, credentialField(tenantId), row.credential)))
      : undefined
  return {
    issuer: row.issuer,
    clientId: row.client_id,
    authMethod: row.auth_method,
    subjectClaim: row.subject_claim,
    roleClaim: row.role_claim,
    scopes: row.scopes,
    sessionSeconds: row.session_seconds,
    ...(publicJwk ? { publicJwk } : {}),
    updatedAt: new Date(row.updated_at).toISOString(),
  }
}

/** Removes the tenant's provider (audited): no new sign-in goes through it; sessions already open run out. */
export async function removeOidcProvider(ctx: Pick<Ctx, 'db'>, tenantId: string, actor: Actor): Promise<void> {
  await ctx.db.transaction().execute(async (trx) => {
    const removed = await trx.deleteFrom('staff_oidc_providers').where('tenant_id', '=', tenantId).executeTakeFirst()
    if (removed.numDeletedRows === 0n) throw new Problem('request/not-found', 'no identity provider is configured')
    await recordAudit(trx, { tenantId, actor, action: 'staff.oidc.remove', outcome: 'success', details: {} })
  })
}

/** A tenant's provider, ready to use: the discovered configuration of `openid-client`, and the claims to read. */
export interface OidcClient {
  config: oidc.Configuration
  /** The provider's signing keys (its `jwks_uri`, fetched by `jose` and kept while the discovery is): logout tokens. */
  jwks: ReturnType<typeof createRemoteJWKSet> | undefined
  subjectClaim: string
  roleClaim: string
  scopes: string
  sessionSeconds: number
}

/** Discovered again after this long, so that a provider's new endpoints or keys are found without a restart. */
const DISCOVERY_TTL_MS = 10 * 60_000
const TIMEOUT_SECONDS = 5

/**
 * The tenant's provider (OpenID Connect Discovery through `openid-client`, its result kept a while and refreshed
 * when the configuration changes), or undefined when the tenant has none. A provider that cannot be reached throws.
 */
export function oidcClients(ctx: Ctx) {
  const cache = new Map<string, { updatedAt: number; at: number; client: Promise<OidcClient> }>()
  return async (tenantId: string): Promise<OidcClient | undefined> => {
    const row = await ctx.db
      .selectFrom('staff_oidc_providers')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .executeTakeFirst()
    if (!row) return undefined
    const updatedAt = new Date(row.updated_at).getTime()
    const cached = cache.get(tenantId)
    if (cached && cached.updatedAt === updatedAt && Date.now() - cached.at < DISCOVERY_TTL_MS) return cached.client
    const client = discover(ctx, row)
    cache.set(tenantId, { updatedAt, at: Date.now(), client })
    client.catch(() => cache.delete(tenantId))
    return client
  }
}

async function discover(
  ctx: Ctx,
  row: {
    tenant_id: string
    issuer: string
    client_id: string
    auth_method: OidcAuthMethod
    credential: Uint8Array
    subject_claim: string
    role_claim: string
    scopes: string
    session_seconds: number
  },
): Promise<OidcClient> {
  const credential = await ctx.keyring.decryptText(row.tenant_id, credentialField(row.tenant_id), row.credential)
  let authentication: oidc.ClientAuth
  if (row.auth_method === 'private_key_jwt') {
    const jwk = JSON.parse(credential) as JWK
    const key = (await importJWK(jwk, jwk.alg)) as CryptoKey
    authentication = oidc.PrivateKeyJwt({ key, kid: jwk.kid as string })
  } else {
    authentication =
      row.auth_method === 'client_secret_post' ? oidc.ClientSecretPost(credential) : oidc.ClientSecretBasic(credential)
  }
  const insecure = ctx.config.mode === 'dev' && row.issuer.startsWith('http://')
  const config = await oidc.discovery(new URL(row.issuer), row.client_id, undefined, authentication, {
    timeout: TIMEOUT_SECONDS,
    // Plain HTTP only for a dev-mode provider (tests); production insists on https.
    ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
  })
  config.timeout = TIMEOUT_SECONDS
  // The ID token's signature is checked against the provider's JWKS too, not only trusted for having come over TLS
  // from the token endpoint (which OpenID Connect Core allows): a token altered on the way is refused.
  oidc.enableNonRepudiationChecks(config)
  const jwksUri = config.serverMetadata().jwks_uri
  return {
    config,
    jwks: jwksUri ? createRemoteJWKSet(new URL(jwksUri), { timeoutDuration: TIMEOUT_SECONDS * 1000 }) : undefined,
    subjectClaim: row.subject_claim,
    roleClaim: row.role_claim,
    scopes: row.scopes,
    sessionSeconds: row.session_seconds,
  }
}
