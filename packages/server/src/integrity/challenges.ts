import { randomBytes } from 'node:crypto'
import type { ServerContext } from '../platform/context.ts'
import { secretHash } from '../platform/ids.ts'

const CHALLENGE_TTL_SECONDS = 120

/** A single-use server nonce for one attestation by one device, short-lived; only its hash is stored. */
export async function issueChallenge(ctx: Pick<ServerContext, 'db'>, tenantId: string, deviceId: string) {
  const challenge = randomBytes(32).toString('base64url')
  const expiresAt = new Date(Date.now() + CHALLENGE_TTL_SECONDS * 1000)
  await ctx.db
    .insertInto('integrity_challenges')
    .values({
      challenge_hash: secretHash(challenge),
      tenant_id: tenantId,
      device_id: deviceId,
      expires_at: expiresAt,
      used_at: null,
    })
    .execute()
  return { challenge, expiresAt: expiresAt.toISOString() }
}

/** Uses a challenge up, atomically: true once for a fresh challenge of this device, false ever after. */
export async function consumeChallenge(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  deviceId: string,
  challenge: string,
): Promise<boolean> {
  const now = new Date()
  const result = await ctx.db
    .updateTable('integrity_challenges')
    .set({ used_at: now })
    .where('challenge_hash', '=', secretHash(challenge))
    .where('tenant_id', '=', tenantId)
    .where('device_id', '=', deviceId)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirst()
  return result.numUpdatedRows > 0n
}

/** Forgets challenges past their lifetime, used or not; called by the housekeeping timer. */
export async function purgeExpiredChallenges(ctx: Pick<ServerContext, 'db'>): Promise<void> {
  await ctx.db.deleteFrom('integrity_challenges').where('expires_at', '<', new Date()).execute()
}
