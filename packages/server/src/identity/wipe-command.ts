import { exportJWK, type JWK } from 'jose'
import { recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { signJwt } from '../platform/keyring/jws.ts'
import { type SigningKey, verificationKeys } from '../platform/keyring/signing-keys.ts'
import type { VerifiedProof } from './dpop.ts'

export const WIPE_COMMAND_TYPE = 'strongroom-wipe+jwt'
export const WIPE_COMMAND_ISSUER = 'strongroom'

interface RevokedDevice {
  tenant_id: string
  id: string
  jkt: string
}

/**
 * The server's order to a revoked device to erase what Strongroom stored on it: a JWS (ES256) under the `wipe-command`
 * signing key, naming the tenant, the device and its key thumbprint, so that it cannot be replayed to another device.
 * It orders only erasure, which the device was going to lose access to anyway, so it carries no expiry.
 */
export async function signWipeCommand(key: SigningKey, device: RevokedDevice): Promise<string> {
  return signJwt(key, WIPE_COMMAND_TYPE, {
    tid: device.tenant_id,
    deviceId: device.id,
    jkt: device.jkt,
    cmd: 'wipe',
    iss: WIPE_COMMAND_ISSUER,
    sub: device.id,
  })
}

/** The problem a revoked device gets when it presents its key: `identity/device-wiped`, carrying the command. */
export async function deviceWipedProblem(key: SigningKey, device: RevokedDevice): Promise<Problem> {
  return new Problem(
    'identity/device-wiped',
    'erase the local store, then POST /v1/devices/wipe-confirmation',
    undefined,
    {
      wipeCommand: await signWipeCommand(key, device),
    },
  )
}

/** The public keys that verify wipe commands (old keys stay listed); a device pins them at enrolment. */
export async function wipeCommandJwks(ctx: Pick<ServerContext, 'db'>): Promise<{ keys: JWK[] }> {
  const keys = await verificationKeys(ctx.db, 'wipe-command')
  return {
    keys: await Promise.all(
      [...keys].map(async ([kid, key]) => ({ ...(await exportJWK(key)), kid, alg: 'ES256', use: 'sig' })),
    ),
  }
}

/**
 * A revoked device confirms, proving its key, that it erased its store: audited once, and the device is marked
 * wiped. Its public key stays, since what it signed before (consents) must still verify; nothing secret of it is kept.
 */
export async function confirmWipe(
  ctx: Pick<ServerContext, 'db'>,
  proof: VerifiedProof,
): Promise<{ deviceId: string; wipedAt: string }> {
  return ctx.db.transaction().execute(async (trx) => {
    const device = await trx
      .selectFrom('devices')
      .select(['tenant_id', 'id', 'customer_id', 'status', 'wiped_at'])
      .where('jkt', '=', proof.jkt)
      .forUpdate()
      .executeTakeFirst()
    if (device?.status !== 'revoked') {
      throw new Problem('auth/forbidden', 'only a revoked device confirms a wipe')
    }
    if (device.wiped_at) return { deviceId: device.id, wipedAt: new Date(device.wiped_at).toISOString() }
    const wipedAt = new Date()
    await trx
      .updateTable('devices')
      .set({ wiped_at: wipedAt })
      .where('tenant_id', '=', device.tenant_id)
      .where('id', '=', device.id)
      .execute()
    await recordAudit(trx, {
      tenantId: device.tenant_id,
      actor: { kind: 'device', id: device.id },
      action: 'device.wipe.confirmed',
      target: { kind: 'device', id: device.id },
      outcome: 'success',
      details: { customerId: device.customer_id },
    })
    return { deviceId: device.id, wipedAt: wipedAt.toISOString() }
  })
}
