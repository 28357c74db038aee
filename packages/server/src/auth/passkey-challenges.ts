import { randomBytes } from 'node:crypto'
import type { ServerContext } from '../platform/context.ts'
import { secretHash } from '../platform/ids.ts'

/** Two minutes: long enough to find the security key or touch the sensor, short enough to be useless later. */
export const PASSKEY_CHALLENGE_TTL_SECONDS = 120

export type PasskeyOwner = { kind: 'customer' | 'staff'; id: string }
export type ChallengePurpose = 'register' | 'authenticate' | 'sign-in' | 'pivot'

type Ctx = Pick<ServerContext, 'db'>

/**
 * A single-use, short-lived server challenge for one WebAuthn ceremony of one purpose, bound to its owner when the
 * owner is known (registration, a customer's authentication) or to the tenant alone (a staff sign-in, where the
 * credential says who signs in). Only its hash is stored.
 */
export async function issuePasskeyChallenge(
  ctx: Ctx,
  tenantId: string,
  purpose: ChallengePurpose,
  owner: PasskeyOwner | undefined,
): Promise<string> {
  const challenge = randomBytes(32).toString('base64url')
  await ctx.db
    .insertInto('passkey_challenges')
    .values({
      challenge_hash: secretHash(challenge),
      tenant_id: tenantId,
      purpose,
      owner_kind: owner?.kind ?? null,
      owner_id: owner?.id ?? null,
      expires_at: new Date(Date.now() + PASSKEY_CHALLENGE_TTL_SECONDS * 1000),
      used_at: null,
    })
    .execute()
  return challenge
}

/**
 * Uses a challenge up, atomically: true once for a fresh challenge issued for this tenant, purpose and owner; false
 * for an unknown, used, expired or someone else's challenge. Called before the signature is checked, so that a failed
 * attempt burns the challenge too.
 */
export async function consumePasskeyChallenge(
  ctx: Ctx,
  tenantId: string,
  purpose: ChallengePurpose,
  owner: PasskeyOwner | undefined,
  challenge: string,
): Promise<boolean> {
  const now = new Date()
  let update = ctx.db
    .updateTable('passkey_challenges')
    .set({ used_at: now })
    .where('challenge_hash', '=', secretHash(challenge))
    .where('tenant_id', '=', tenantId)
    .where('purpose', '=', purpose)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
  update = owner
    ? update.where('owner_kind', '=', owner.kind).where('owner_id', '=', owner.id)
    : update.where('owner_id', 'is', null)
  const result = await update.executeTakeFirst()
  return result.numUpdatedRows > 0n
}

/** Forgets challenges past their lifetime, used or not; called by the housekeeping timer. */
export async function purgeExpiredPasskeyChallenges(ctx: Ctx): Promise<void> {
  await ctx.db.deleteFrom('passkey_challenges').where('expires_at', '<', new Date()).execute()
}
