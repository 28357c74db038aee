import type { ApiClientScope } from '@strongroom/sdk/protocol'
import { createLocalJWKSet, decodeJwt, type JSONWebKeySet, jwtVerify } from 'jose'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import type { ClientPrincipal } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import type { Scope } from '../platform/http/roles.ts'
import { newId, newSecret, secretHash } from '../platform/ids.ts'

/** Defined with the other principals in platform/http, where the access rules need it; exported here for callers. */
export type { ClientPrincipal }

const CLIENT_TOKEN_TTL_SECONDS = 300
const MAX_ASSERTION_LIFETIME_SECONDS = 300
/** What a client assertion may be signed with; Ed25519 under both its names (EdDSA, and RFC 9864's Ed25519). */
export const ASSERTION_ALGORITHMS = ['ES256', 'ES384', 'EdDSA', 'Ed25519', 'PS256', 'RS256']

type Ctx = Pick<ServerContext, 'db'>

/** Registers a bank backend with the public keys it will sign its client assertions with. */
export async function registerApiClient(
  ctx: Ctx,
  tenantId: string,
  input: { name: string; jwks: JSONWebKeySet; scopes: ApiClientScope[]; webhookUrl?: string | undefined },
  actor: Actor,
): Promise<{ clientId: string; name: string; scopes: ApiClientScope[] }> {
  for (const key of input.jwks.keys) {
    if ('d' in key || 'k' in key) throw new Problem('request/invalid', 'the JWKS must hold public keys only')
    if (!['EC', 'OKP', 'RSA'].includes(key.kty ?? '')) throw new Problem('request/invalid', 'keys are EC, OKP or RSA')
  }
  const clientId = newId('clt')
  await ctx.db.transaction().execute(async (trx) => {
    await trx
      .insertInto('api_clients')
      .values({
        tenant_id: tenantId,
        id: clientId,
        name: input.name,
        jwks: JSON.stringify(input.jwks),
        scopes: input.scopes.join(' '),
        revoked_at: null,
        webhook_url: input.webhookUrl ?? null,
      })
      .execute()
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'api-client.register',
      target: { kind: 'api-client', id: clientId },
      outcome: 'success',
      details: { name: input.name, scopes: input.scopes, keys: input.jwks.keys.length },
    })
  })
  return { clientId, name: input.name, scopes: input.scopes }
}

/** Where a bank backend wants its notifications, if anywhere. */
export async function webhookUrlOf(ctx: Ctx, tenantId: string, clientId: string): Promise<string | undefined> {
  const row = await ctx.db
    .selectFrom('api_clients')
    .select('webhook_url')
    .where('tenant_id', '=', tenantId)
    .where('id', '=', clientId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
  return row?.webhook_url ?? undefined
}

/** The bank backends of a tenant that registered a webhook URL (and are not revoked): who hears of fraud reports. */
export async function webhookClientsOf(ctx: Ctx, tenantId: string): Promise<string[]> {
  const rows = await ctx.db
    .selectFrom('api_clients')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('webhook_url', 'is not', null)
    .where('revoked_at', 'is', null)
    .orderBy('id')
    .execute()
  return rows.map((row) => row.id)
}

/** An OAuth 2.0 error (RFC 6749 §5.2): the token endpoint answers in the protocol's own format. */
export class OAuthError extends Error {
  constructor(
    readonly error: 'invalid_request' | 'invalid_client' | 'unsupported_grant_type' | 'invalid_scope',
    readonly description: string,
  ) {
    super(description)
    this.name = 'OAuthError'
  }
  get status(): 400 | 401 {
    return this.error === 'invalid_client' ? 401 : 400
  }
}

/**
 * The client credentials grant with private_key_jwt (RFC 7523 §2.2): the client proves itself with a short-lived JWT
 * signed by one of its registered keys, naming itself as issuer and subject and, as audience, this token endpoint or
 * this server's issuer identifier (what FAPI 2.0 and RFC 7523bis ask clients to send, and oauth4webapi does); each
 * assertion works once. The answer is a short-lived opaque bearer token limited to the scopes asked for.
 */
export async function issueClientToken(
  ctx: Ctx,
  request: {
    grantType?: string
    assertionType?: string
    assertion?: string
    scope?: string
    tokenEndpoint: string
    issuer: string
  },
): Promise<{ access_token: string; token_type: 'Bearer'; expires_in: number; scope: string }> {
  if (request.grantType !== 'client_credentials') {
    throw new OAuthError('unsupported_grant_type', 'only client_credentials is supported')
  }
  if (request.assertionType !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' || !request.assertion) {
    throw new OAuthError('invalid_client', 'authenticate with a private_key_jwt client assertion')
  }
  let clientId: string
  try {
    clientId = String(decodeJwt(request.assertion).iss)
  } catch {
    throw new OAuthError('invalid_client', 'client authentication failed')
  }
  const client = await ctx.db
    .selectFrom('api_clients')
    .selectAll()
    .where('id', '=', clientId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
  if (!client) throw new OAuthError('invalid_client', 'client authentication failed')
  let payload: Record<string, unknown>
  try {
    ;({ payload } = await jwtVerify(request.assertion, createLocalJWKSet(JSON.parse(client.jwks)), {
      issuer: client.id,
      subject: client.id,
      audience: [request.tokenEndpoint, request.issuer],
      algorithms: ASSERTION_ALGORITHMS,
      requiredClaims: ['exp', 'jti'],
      clockTolerance: 30,
    }))
  } catch {
    throw new OAuthError('invalid_client', 'client authentication failed')
  }
  const exp = payload.exp as number
  if (exp - Date.now() / 1000 > MAX_ASSERTION_LIFETIME_SECONDS) {
    throw new OAuthError('invalid_client', `client assertions may live ${MAX_ASSERTION_LIFETIME_SECONDS} s at most`)
  }
  const jti = String(payload.jti).slice(0, 256)
  const used = await ctx.db
    .insertInto('client_assertion_jtis')
    .values({ client_id: client.id, jti, expires_at: new Date((exp + 60) * 1000) })
    .onConflict((oc) => oc.columns(['client_id', 'jti']).doNothing())
    .executeTakeFirst()
  if ((used.numInsertedOrUpdatedRows ?? 0n) === 0n) throw new OAuthError('invalid_client', 'client assertion replayed')

  const allowed = client.scopes.split(' ')
  const requested = request.scope ? request.scope.split(' ').filter(Boolean) : allowed
  const refused = requested.filter((s) => !allowed.includes(s))
  if (refused.length > 0) throw new OAuthError('invalid_scope', `not granted to this client: ${refused.join(' ')}`)
  const token = newSecret('srb')
  await ctx.db
    .insertInto('client_tokens')
    .values({
      token_hash: secretHash(token),
      tenant_id: client.tenant_id,
      client_id: client.id,
      scopes: requested.join(' '),
      expires_at: new Date(Date.now() + CLIENT_TOKEN_TTL_SECONDS * 1000),
    })
    .execute()
  return { access_token: token, token_type: 'Bearer', expires_in: CLIENT_TOKEN_TTL_SECONDS, scope: requested.join(' ') }
}

/** The client a bearer token stands for, or undefined when it is unknown, expired or its client revoked. */
export async function authenticateClientToken(ctx: Ctx, token: string): Promise<ClientPrincipal | undefined> {
  if (!token.startsWith('srb_') || token.length > 100) return undefined
  const row = await ctx.db
    .selectFrom('client_tokens')
    .innerJoin('api_clients', 'api_clients.id', 'client_tokens.client_id')
    .select(['client_tokens.tenant_id', 'client_tokens.client_id', 'client_tokens.scopes', 'client_tokens.expires_at'])
    .where('client_tokens.token_hash', '=', secretHash(token))
    .where('client_tokens.expires_at', '>', new Date())
    .where('api_clients.revoked_at', 'is', null)
    .executeTakeFirst()
  if (!row) return undefined
  return {
    kind: 'client',
    tenantId: row.tenant_id,
    clientId: row.client_id,
    scopes: row.scopes.split(' ') as Scope[],
    tokenExpiresAt: new Date(row.expires_at),
  }
}

/** Forgets expired client tokens and assertion ids; called by the housekeeping timer. */
export async function purgeExpiredClientCredentials(ctx: Ctx): Promise<void> {
  const now = new Date()
  await ctx.db.deleteFrom('client_tokens').where('expires_at', '<', now).execute()
  await ctx.db.deleteFrom('client_assertion_jtis').where('expires_at', '<', now).execute()
}
