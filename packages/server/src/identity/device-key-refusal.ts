import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import { type VerifiedProof, verifyDpopProof } from './dpop.ts'
import { deviceWipedProblem } from './wipe-command.ts'

/**
 * What a device key that is no longer served gets instead of a plain refusal: a revoked device
 * `identity/device-wiped` with its signed wipe command, a suspended one `identity/device-suspended` (its store is left
 * alone: it may be resumed). Undefined for an active key, or one that no device holds.
 */
export async function refusalOfDeviceKey(
  ctx: Pick<ServerContext, 'db'>,
  wipeKey: SigningKey,
  jkt: string,
): Promise<Problem | undefined> {
  const device = await ctx.db
    .selectFrom('devices')
    .select(['tenant_id', 'id', 'jkt', 'status'])
    .where('jkt', '=', jkt)
    .where('status', 'in', ['revoked', 'suspended'])
    .executeTakeFirst()
  if (device?.status === 'revoked') return deviceWipedProblem(wipeKey, device)
  if (device?.status === 'suspended') return new Problem('identity/device-suspended')
  return undefined
}

/**
 * For a refused access token (suspension and revocation delete them): when the request's DPoP proof is valid, the
 * refusal of its key; otherwise undefined and the plain refusal stands. Only a proof signed by the device key itself
 * learns the device's state, so a stolen token alone learns nothing.
 */
export async function refusalOfDeviceProof(
  ctx: Pick<ServerContext, 'db'>,
  wipeKey: SigningKey,
  dpop: string | undefined,
  request: { htm: string; htu: string; accessToken: string },
): Promise<Problem | undefined> {
  if (!dpop) return undefined
  let proof: VerifiedProof
  try {
    proof = await verifyDpopProof(ctx, dpop, request)
  } catch {
    return undefined
  }
  return refusalOfDeviceKey(ctx, wipeKey, proof.jkt)
}
