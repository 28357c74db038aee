import type { StaffMember } from '@strongroom/sdk/protocol'
import * as oidc from 'openid-client'
import { recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import type { Role } from '../platform/http/roles.ts'
import { newId, newSecret, secretHash } from '../platform/ids.ts'
import type { FieldRef } from '../platform/keyring/keyring.ts'
import type { EncryptedColumn } from '../platform/keyring/reencrypt.ts'
import type { OidcClient } from './oidc-providers.ts'
import { loadScimRolePolicy, mappedRole } from './scim.ts'
import { applyStaffRole, type IssuedStaffToken, issueStaffTokenIn, isUniqueViolation } from './staff.ts'
import { publishStaffChanged, publishStaffRevoked } from './staff-events.ts'
import { addStaff } from './staff-lifecycle.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'config'>
export type OidcClientOf = (tenantId: string) => Promise<OidcClient | undefined>

/** How long the browser has at the identity provider, and then to hand the console its first token. */
const AUTHORIZATION_SECONDS = 600
const HANDOFF_SECONDS = 60
/** A console token lives this long; the console refreshes it while the session lasts. */
export const CONSOLE_TOKEN_SECONDS = 600

/**
 * Why a sign-in through the identity provider failed, as the console is told (in its address's fragment) and the
 * audit log records it: never the provider's own words, which may carry anything.
 */
export type SignInFailure =
  | 'no-provider' // the tenant has no identity provider
  | 'unavailable' // the provider could not be reached
  | 'state' // the callback's state is unknown, used or expired
  | 'provider-error' // the provider answered an error (the user cancelled, was refused)
  | 'token' // the code exchange or the ID token did not verify: nonce, issuer, audience, expiry, signature, replay
  | 'no-role' // no value of the role claim maps to a role, or several do
  | 'deactivated' // the staff member is deactivated
  | 'conflict' // a staff member of that name exists under another identity

export class SignInFailed extends Error {
  constructor(
    readonly failure: SignInFailure,
    readonly tenantId?: string,
  ) {
    super(`sign-in failed: ${failure}`)
    this.name = 'SignInFailed'
  }
}

const verifierField = (id: string): FieldRef => ({ table: 'staff_sign_ins', column: 'code_verifier', rowId: id })
const idTokenField = (id: string): FieldRef => ({ table: 'staff_sign_ins', column: 'id_token', rowId: id })

/**
 * Starts a staff sign-in through the tenant's identity provider: a fresh state, nonce and PKCE verifier (RFC 7636,
 * S256) kept in the database (the callback may reach another node), and the authorization URL to send the browser to.
 */
export async function startOidcSignIn(
  ctx: Ctx,
  clientOf: OidcClientOf,
  tenantId: string,
  redirectUri: string,
): Promise<URL> {
  const client = await clientOf(tenantId).catch(() => {
    throw new SignInFailed('unavailable', tenantId)
  })
  if (!client) throw new SignInFailed('no-provider')
  const id = newId('sgn')
  const state = oidc.randomState()
  const nonce = oidc.randomNonce()
  const verifier = oidc.randomPKCECodeVerifier()
  const now = new Date()
  await ctx.db
    .insertInto('staff_sign_ins')
    .values({
      id,
      tenant_id: tenantId,
      state_hash: secretHash(state),
      nonce,
      code_verifier: await ctx.keyring.encrypt(tenantId, verifierField(id), verifier),
      redirect_uri: redirectUri,
      expires_at: new Date(now.getTime() + AUTHORIZATION_SECONDS * 1000),
      callback_at: null,
      staff_id: null,
      handoff_hash: null,
      handed_off_at: null,
      session_expires_at: null,
      id_token: null,
      ended_at: null,
      created_at: now,
      idp_subject: null,
      idp_session: null,
    })
    .execute()
  return oidc.buildAuthorizationUrl(client.config, {
    redirect_uri: redirectUri,
    scope: client.scopes,
    state,
    nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  })
}

/**
 * The identity provider's answer: the state is used up first (one callback per sign-in, whatever happens next), then
 * `openid-client` exchanges the code with the PKCE verifier and validates the ID token (signature, issuer, audience,
 * expiry, nonce). The staff member is found by the subject claim (as SCIM provisioned them) or made on first sign-in,
 * and takes the role the role claim maps to. Gives the tenant and a single-use handoff code for the console.
 */
export async function finishOidcSignIn(
  ctx: Ctx & Pick<ServerContext, 'bus'>,
  clientOf: OidcClientOf,
  callbackUrl: URL,
): Promise<{ tenantId: string; handoff: string }> {
  const state = callbackUrl.searchParams.get('state')
  if (!state || state.length > 200) throw new SignInFailed('state')
  const signIn = await ctx.db
    .updateTable('staff_sign_ins')
    .set({ callback_at: new Date() })
    .where('state_hash', '=', secretHash(state))
    .where('callback_at', 'is', null)
    .where('expires_at', '>', new Date())
    .returning(['id', 'tenant_id', 'nonce', 'code_verifier', 'redirect_uri'])
    .executeTakeFirst()
  if (!signIn) throw new SignInFailed('state')
  const tenantId = signIn.tenant_id
  if (callbackUrl.searchParams.has('error')) throw new SignInFailed('provider-error', tenantId)
  const client = await clientOf(tenantId).catch(() => undefined)
  if (!client) throw new SignInFailed('unavailable', tenantId)
  // The URL the provider redirected to, on the redirect URI the request named (behind a proxy, the public one).
  const current = new URL(signIn.redirect_uri)
  current.search = callbackUrl.search
  let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>
  try {
    tokens = await oidc.authorizationCodeGrant(client.config, current, {
      pkceCodeVerifier: await ctx.keyring.decryptText(tenantId, verifierField(signIn.id), signIn.code_verifier),
      expectedState: state,
      expectedNonce: signIn.nonce,
      idTokenExpected: true,
    })
  } catch {
    throw new SignInFailed('token', tenantId)
  }
  const claims = tokens.claims() as Record<string, unknown>
  const staff = await staffFor(ctx, tenantId, client, claims)
  const handoff = newSecret('sho')
  const now = Date.now()
  await ctx.db
    .updateTable('staff_sign_ins')
    .set({
      staff_id: staff.id,
      handoff_hash: secretHash(handoff),
      // The handoff must come soon; the session then lasts the tenant's session length from here.
      expires_at: new Date(now + HANDOFF_SECONDS * 1000),
      session_expires_at: new Date(now + client.sessionSeconds * 1000),
      id_token: tokens.id_token ? await ctx.keyring.encrypt(tenantId, idTokenField(signIn.id), tokens.id_token) : null,
      // What a back-channel logout token names this session by.
      idp_subject: typeof claims.sub === 'string' ? claims.sub : null,
      idp_session: typeof claims.sid === 'string' ? claims.sid : null,
    })
    .where('id', '=', signIn.id)
    .execute()
  return { tenantId, handoff }
}

/** Values of a claim: a string, or an array of strings (Entra ID's `roles` and `groups`, Okta's `groups`). */
function claimValues(value: unknown): string[] {
  if (typeof value === 'string') return [value]
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []
}

/**
 * The staff member the ID token names: by the subject claim, as the external id SCIM gave them; made on their first
 * sign-in when SCIM did not provision them. Their role follows the role claim through the tenant's mapping (a change
 * audited); a deactivated or deleted member is refused.
 */
async function staffFor(
  ctx: Ctx & Pick<ServerContext, 'bus'>,
  tenantId: string,
  client: OidcClient,
  claims: Record<string, unknown>,
): Promise<StaffMember> {
  const subject = claimValues(claims[client.subjectClaim])[0]
  if (!subject) throw new SignInFailed('token', tenantId)
  const role = mappedRole(
    claimValues(claims[client.roleClaim]).map((value) => ({ value })),
    await loadScimRolePolicy(ctx, tenantId),
  )
  if (role === 'none' || role === 'several') throw new SignInFailed('no-role', tenantId)
  const actor = { kind: 'system', id: null } as const
  const existing = await ctx.db
    .selectFrom('staff')
    .select(['id', 'name', 'role', 'deactivated_at', 'deleted_at', 'roleless_at'])
    .where('tenant_id', '=', tenantId)
    .where('external_id', '=', subject)
    .executeTakeFirst()
  if (!existing) {
    const name = claimValues(claims.preferred_username)[0] ?? claimValues(claims.email)[0] ?? subject
    try {
      return await addStaff(ctx, tenantId, { name, role, externalId: subject }, actor)
    } catch (error) {
      if (error instanceof Problem && error.kind === 'tenancy/duplicate') throw new SignInFailed('conflict', tenantId)
      if (isUniqueViolation(error)) throw new SignInFailed('conflict', tenantId)
      throw error
    }
  }
  if (existing.deactivated_at !== null || existing.deleted_at !== null) throw new SignInFailed('deactivated', tenantId)
  if (existing.role !== role || existing.roleless_at !== null) await changeRole(ctx, tenantId, existing.id, role)
  return { id: existing.id, tenantId, name: existing.name, role, active: true }
}

/** The role the claim maps to, as a group change gives one: the tokens that relied on a role lost end with it. */
async function changeRole(
  ctx: Ctx & Pick<ServerContext, 'bus'>,
  tenantId: string,
  staffId: string,
  role: Role,
): Promise<void> {
  const { changed, revokedTokenIds } = await ctx.db.transaction().execute(async (trx) => {
    const current = await trx
      .selectFrom('staff')
      .select(['tenant_id', 'id', 'role', 'roleless_at'])
      .where('tenant_id', '=', tenantId)
      .where('id', '=', staffId)
      .forUpdate()
      .executeTakeFirstOrThrow()
    return applyStaffRole({ db: trx }, current, role, { kind: 'system', id: null }, 'identity provider role claim')
  })
  for (const tokenId of revokedTokenIds) publishStaffRevoked(ctx.bus, { tenantId, staffId, tokenId })
  if (changed) publishStaffChanged(ctx.bus, { tenantId, staffId })
}

/** A console session's token and when the session ends (refreshes do not pass it). */
export type ConsoleSessionToken = IssuedStaffToken & { staffId: string; sessionExpiresAt: string }

/**
 * Exchanges the single-use handoff code (within a minute of the callback) for the console's first short-lived token.
 * A code used, expired or unknown is refused alike.
 */
export async function claimOidcSession(ctx: Ctx, tenantId: string, handoff: string): Promise<ConsoleSessionToken> {
  // Claimed in the transaction that issues the token: a failure in between leaves the code unused, for the retry.
  return ctx.db.transaction().execute(async (trx) => {
    const signIn = await trx
      .updateTable('staff_sign_ins')
      .set({ handed_off_at: new Date() })
      .where('tenant_id', '=', tenantId)
      .where('handoff_hash', '=', secretHash(handoff))
      .where('handed_off_at', 'is', null)
      .where('expires_at', '>', new Date())
      .returning(['id', 'staff_id', 'session_expires_at'])
      .executeTakeFirst()
    if (!signIn?.staff_id || !signIn.session_expires_at) throw new Problem('auth/sign-in-failed')
    return sessionToken(trx, tenantId, { id: signIn.id, staffId: signIn.staff_id, ends: signIn.session_expires_at })
  })
}

/** A console token for the sign-in's session, issued in the caller's transaction. */
async function sessionToken(
  trx: Ctx['db'],
  tenantId: string,
  signIn: { id: string; staffId: string; ends: Date },
): Promise<ConsoleSessionToken> {
  const row = await trx
    .selectFrom('staff')
    .select(['id', 'name', 'role', 'deactivated_at'])
    .where('tenant_id', '=', tenantId)
    .where('id', '=', signIn.staffId)
    .executeTakeFirst()
  if (!row || row.deactivated_at !== null) throw new Problem('auth/sign-in-failed')
  const left = Math.floor((new Date(signIn.ends).getTime() - Date.now()) / 1000)
  if (left < 1) throw new Problem('auth/session-ended')
  const staff: StaffMember = { id: row.id, tenantId, name: row.name, role: row.role, active: true }
  const issued = await issueStaffTokenIn(
    trx,
    staff,
    { ttlSeconds: Math.min(CONSOLE_TOKEN_SECONDS, left), signIn: { method: 'oidc', id: signIn.id } },
    { kind: 'staff', id: staff.id },
  )
  return { ...issued, staffId: staff.id, sessionExpiresAt: new Date(signIn.ends).toISOString() }
}

/** The sign-in a staff token continues, if it was issued for one that has not ended. */
async function openSignIn(ctx: Ctx, tenantId: string, tokenId: string) {
  return ctx.db
    .selectFrom('staff_tokens')
    .innerJoin('staff_sign_ins', 'staff_sign_ins.id', 'staff_tokens.sign_in_id')
    .select(['staff_sign_ins.id', 'staff_sign_ins.staff_id', 'staff_sign_ins.session_expires_at'])
    .select(['staff_sign_ins.id_token', 'staff_sign_ins.ended_at'])
    .where('staff_tokens.tenant_id', '=', tenantId)
    .where('staff_tokens.id', '=', tokenId)
    .executeTakeFirst()
}

/**
 * A fresh short-lived token for the session the presented token continues: the console calls this before its token
 * runs out (the old one then runs out on its own, so a request or stream still using it is not cut). Refused once the
 * session ended (signed out, or past its end) or the member was deactivated (their tokens were revoked, so the
 * presented one no longer authenticates).
 *
 * Each token renews once, as refresh tokens rotate (RFC 9700 §4.14.2): a console holds one line of tokens, each
 * renewing into the next, so a second renewal with the same token means a copy of it is in other hands. Which of the
 * two is the thief cannot be told, so the whole session ends (every token of it revoked, its streams closed, audited)
 * and the staff member signs in again. A stolen token otherwise kept minting new ones until the session's end (8 h).
 */
export async function refreshConsoleSession(
  ctx: Ctx & Pick<ServerContext, 'bus' | 'log'>,
  principal: { tenantId: string; staffId: string; tokenId: string },
): Promise<ConsoleSessionToken> {
  const { tenantId, staffId, tokenId } = principal
  const signIn = await openSignIn(ctx, tenantId, tokenId)
  if (!signIn?.session_expires_at || signIn.ended_at !== null || signIn.staff_id !== staffId) {
    throw new Problem('auth/session-ended')
  }
  const session = { id: signIn.id, staffId, ends: signIn.session_expires_at }
  const now = new Date()
  // One transaction: a renewal that fails, whatever failed (the database going away included), leaves the token not
  // renewed, so that the console's retry renews and is not taken for a stolen copy. The member's row, then the
  // sign-in's, then the token's are locked, in the order deactivations (member, tokens) and sign-outs (sign-in, tokens)
  // take them: none waits on another in a circle, and a sign-out either comes first (refused here) or ends this token.
  const issued = await ctx.db.transaction().execute(async (trx) => {
    await trx
      .selectFrom('staff')
      .select('id')
      .where('tenant_id', '=', tenantId)
      .where('id', '=', staffId)
      .forUpdate()
      .execute()
    const open = await trx
      .selectFrom('staff_sign_ins')
      .select('ended_at')
      .where('tenant_id', '=', tenantId)
      .where('id', '=', signIn.id)
      .forUpdate()
      .executeTakeFirst()
    if (!open || open.ended_at !== null) throw new Problem('auth/session-ended')
    // The single-use point: of two renewals with one token, one statement finds it not yet renewed.
    const renewing = await trx
      .updateTable('staff_tokens')
      .set({ renewed_at: now })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', tokenId)
      .where('renewed_at', 'is', null)
      .returning('id')
      .executeTakeFirst()
    if (!renewing) return undefined
    return sessionToken(trx, tenantId, session)
  })
  if (issued) return issued
  const revoked = await ctx.db.transaction().execute(async (trx) => {
    const ended = await endSignIns(trx, tenantId, [signIn.id], now)
    await recordAudit(trx, {
      tenantId,
      actor: { kind: 'staff', id: staffId },
      action: 'staff.session-token-reused',
      target: { kind: 'staff', id: staffId },
      outcome: 'failure',
      details: { tokenId, signIn: signIn.id },
    })
    return ended
  })
  for (const { id } of revoked) publishStaffRevoked(ctx.bus, { tenantId, staffId, tokenId: id })
  ctx.log.warn({ tenantId, staffId, signIn: signIn.id }, 'a console token renewed twice: the session is ended')
  throw new Problem('auth/session-ended')
}

/**
 * Ends the session the token belongs to: every token of it is revoked, the sign-in is marked ended (audited). Gives
 * the provider's end-session URL (RP-initiated logout) when the token came from a sign-in through a provider that has
 * one, so the console can end the provider's session too.
 */
export async function endConsoleSession(
  ctx: Ctx & Pick<ServerContext, 'bus'>,
  clientOf: OidcClientOf,
  principal: { tenantId: string; staffId: string; tokenId: string },
  postLogoutRedirectUri: string,
): Promise<{ endSessionUrl?: string }> {
  const { tenantId, staffId, tokenId } = principal
  const signIn = await openSignIn(ctx, tenantId, tokenId)
  const now = new Date()
  const revoked = await ctx.db.transaction().execute(async (trx) => {
    const ended = signIn
      ? await endSignIns(trx, tenantId, [signIn.id], now)
      : await trx
          .updateTable('staff_tokens')
          .set({ revoked_at: now })
          .where('tenant_id', '=', tenantId)
          .where('revoked_at', 'is', null)
          .where('id', '=', tokenId)
          .returning(['id', 'staff_id'])
          .execute()
    await recordAudit(trx, {
      tenantId,
      actor: { kind: 'staff', id: staffId },
      action: 'staff.sign-out',
      target: { kind: 'staff', id: staffId },
      outcome: 'success',
      details: { tokenId, ...(signIn ? { signIn: signIn.id } : {}) },
    })
    return ended
  })
  // Told after the commit: the streams these tokens opened close on every node.
  for (const { id } of revoked) publishStaffRevoked(ctx.bus, { tenantId, staffId, tokenId: id })
  if (!signIn?.id_token || signIn.ended_at !== null) return {}
  const client = await clientOf(tenantId).catch(() => undefined)
  if (!client?.config.serverMetadata().end_session_endpoint) return {}
  const idToken = await ctx.keyring.decryptText(tenantId, idTokenField(signIn.id), signIn.id_token)
  const url = oidc.buildEndSessionUrl(client.config, {
    id_token_hint: idToken,
    post_logout_redirect_uri: postLogoutRedirectUri,
  })
  return { endSessionUrl: url.href }
}

/**
 * Ends these sign-ins in the caller's transaction: marked ended (no refresh), every token issued for them revoked.
 * Gives the tokens revoked, for the caller to close the streams they opened once it commits (`publishStaffRevoked`).
 */
export async function endSignIns(
  trx: Ctx['db'],
  tenantId: string,
  signInIds: string[],
  now: Date,
): Promise<{ id: string; staff_id: string }[]> {
  if (signInIds.length === 0) return []
  await trx
    .updateTable('staff_sign_ins')
    .set({ ended_at: now })
    .where('tenant_id', '=', tenantId)
    .where('id', 'in', signInIds)
    .execute()
  return trx
    .updateTable('staff_tokens')
    .set({ revoked_at: now })
    .where('tenant_id', '=', tenantId)
    .where('sign_in_id', 'in', signInIds)
    .where('revoked_at', 'is', null)
    .returning(['id', 'staff_id'])
    .execute()
}

/** The sign-in columns sealed by the keyring: for `keys reencrypt` and `keys retire`. */
export const signInEncryptedColumns: EncryptedColumn[] = [
  { table: 'staff_sign_ins', column: 'code_verifier', key: ['id'], field: (row) => verifierField(row.id as string) },
  { table: 'staff_sign_ins', column: 'id_token', key: ['id'], field: (row) => idTokenField(row.id as string) },
]

/** Sign-ins whose authorization or session is long over: removed by housekeeping. */
export async function purgeEndedSignIns(ctx: Pick<Ctx, 'db'>): Promise<void> {
  const cutoff = new Date(Date.now() - 86400_000)
  await ctx.db
    .deleteFrom('staff_sign_ins')
    .where((eb) =>
      eb.or([
        eb.and([eb('session_expires_at', 'is', null), eb('expires_at', '<', cutoff)]),
        eb('session_expires_at', '<', cutoff),
      ]),
    )
    .execute()
}
