import { type JWTPayload, jwtVerify } from 'jose'
import { recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import type { OidcClientOf } from './oidc-sign-in.ts'
import { endSignIns } from './oidc-sign-in.ts'
import { publishStaffRevoked } from './staff-events.ts'

type Ctx = Pick<ServerContext, 'db' | 'bus'>

export const BACK_CHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout'

/** The provider's signing algorithms a logout token may use: asymmetric only (never `none`, never a shared secret). */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']
/** The provider's clock may be this far off ours. */
const CLOCK_TOLERANCE_SECONDS = 60
/** A logout token older than this is refused whatever its `exp`: its id need not be kept longer. */
const MAX_TOKEN_AGE_SECONDS = 300

/**
 * A logout token refused (OpenID Connect Back-Channel Logout 1.0 §2.8: answered 400 with an `error`). The description
 * is fixed, naming the check that failed, never the token's content.
 */
export class LogoutTokenRefused extends Error {
  constructor(
    readonly description: string,
    /** False when the tenant has no provider (or does not exist): the refusal is then audited in the system chain. */
    readonly tenantKnown = true,
  ) {
    super(description)
    this.name = 'LogoutTokenRefused'
  }
}

/**
 * Validates a logout token as §2.6 says, with `jose` against the provider's JWKS: signature, issuer, audience (our
 * client id), `iat` and `exp` (not older than five minutes), `events` naming the back-channel logout event, `sid`
 * and/or `sub`, no `nonce`; then uses its `jti` up (a replay is refused) and ends the matching console sessions in the
 * same transaction: with `sid`, that session of the provider's; with only `sub`, every session of that user; their
 * tokens revoked and their streams closed on every node once it commits. Gives how many sessions ended.
 */
export async function backChannelLogout(
  ctx: Ctx,
  clientOf: OidcClientOf,
  tenantId: string,
  logoutToken: string,
): Promise<{ endedSessions: number }> {
  const client = await clientOf(tenantId)
  if (!client?.jwks) throw new LogoutTokenRefused('no identity provider with signing keys is configured', false)
  let claims: JWTPayload
  try {
    ;({ payload: claims } = await jwtVerify(logoutToken, client.jwks, {
      issuer: client.config.serverMetadata().issuer,
      audience: client.config.clientMetadata().client_id,
      algorithms: ALGORITHMS,
      requiredClaims: ['iat', 'exp', 'jti'],
      maxTokenAge: MAX_TOKEN_AGE_SECONDS,
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
    }))
  } catch {
    throw new LogoutTokenRefused('the logout token did not verify')
  }
  const events = claims.events as Record<string, unknown> | undefined
  const event = typeof events === 'object' && events !== null ? events[BACK_CHANNEL_LOGOUT_EVENT] : undefined
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new LogoutTokenRefused('the logout token has no back-channel logout event')
  }
  if (claims.nonce !== undefined) throw new LogoutTokenRefused('a logout token must not carry a nonce')
  const sid = typeof claims.sid === 'string' ? claims.sid : undefined
  const sub = typeof claims.sub === 'string' ? claims.sub : undefined
  if (sid === undefined && sub === undefined) throw new LogoutTokenRefused('the logout token names no sid or sub')
  const jti = claims.jti as string
  if (jti.length > 200) throw new LogoutTokenRefused('the logout token id is too long')
  const iat = claims.iat as number
  const keptUntil = Math.min(claims.exp as number, iat + MAX_TOKEN_AGE_SECONDS) + CLOCK_TOLERANCE_SECONDS

  const now = new Date()
  const ended = await ctx.db.transaction().execute(async (trx) => {
    const fresh = await trx
      .insertInto('staff_logout_token_jtis')
      .values({ tenant_id: tenantId, jti, expires_at: new Date(keptUntil * 1000) })
      .onConflict((oc) => oc.columns(['tenant_id', 'jti']).doNothing())
      .returning('jti')
      .executeTakeFirst()
    if (!fresh) return undefined
    let select = trx
      .selectFrom('staff_sign_ins')
      .select(['id', 'staff_id'])
      .where('tenant_id', '=', tenantId)
      .where('ended_at', 'is', null)
      .where('staff_id', 'is not', null)
    if (sid !== undefined) select = select.where('idp_session', '=', sid)
    if (sub !== undefined) select = select.where('idp_subject', '=', sub)
    const signIns = await select.execute()
    const tokens = await endSignIns(
      trx,
      tenantId,
      signIns.map((s) => s.id),
      now,
    )
    for (const signIn of signIns) {
      await recordAudit(trx, {
        tenantId,
        actor: { kind: 'system', id: null },
        action: 'staff.oidc.back-channel-logout',
        target: { kind: 'staff', id: signIn.staff_id as string },
        outcome: 'success',
        details: { signIn: signIn.id, by: sid === undefined ? 'sub' : 'sid' },
      })
    }
    return { sessions: signIns.length, tokens }
  })
  if (!ended) throw new LogoutTokenRefused('the logout token was used already')
  for (const token of ended.tokens)
    publishStaffRevoked(ctx.bus, { tenantId, staffId: token.staff_id, tokenId: token.id })
  return { endedSessions: ended.sessions }
}

/** Logout token ids past their time: removed by housekeeping (a token that old is refused anyway). */
export async function purgeUsedLogoutTokens(ctx: Pick<Ctx, 'db'>): Promise<void> {
  await ctx.db.deleteFrom('staff_logout_token_jtis').where('expires_at', '<', new Date()).execute()
}
