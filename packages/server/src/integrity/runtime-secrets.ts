import { runtimeSecretContext, runtimeSecretSuite, type SealedSecret } from '@strongroom/sdk/secrets'
import { base64url, type JWK } from 'jose'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { DevicePrincipal } from '../identity/devices.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import type { EncryptedColumn } from '../platform/keyring/reencrypt.ts'

const field = (tenantId: string, name: string) => ({
  table: 'runtime_secrets',
  column: 'sealed_value',
  rowId: `${tenantId}:${name}`,
})

/** The runtime secrets, sealed by the keyring: for `keys reencrypt` and `keys retire`. */
export const runtimeSecretEncryptedColumns: EncryptedColumn[] = [
  {
    table: 'runtime_secrets',
    column: 'sealed_value',
    key: ['name'],
    field: (row) => field(row.tenant_id as string, row.name as string),
  },
]

/**
 * Sets (or rotates) a named runtime secret: stored sealed with the tenant's data key, one version at a time, so a
 * rotation takes effect on the next fetch and the old value is gone from the database. Audited without the value.
 */
export async function setRuntimeSecret(
  ctx: Pick<ServerContext, 'db' | 'keyring'>,
  tenantId: string,
  name: string,
  value: Uint8Array,
  actor: Actor,
): Promise<{ name: string; version: number }> {
  const sealed = await ctx.keyring.encrypt(tenantId, field(tenantId, name), value)
  return ctx.db.transaction().execute(async (trx) => {
    const current = await trx
      .selectFrom('runtime_secrets')
      .select('version')
      .where('tenant_id', '=', tenantId)
      .where('name', '=', name)
      .forUpdate()
      .executeTakeFirst()
    const version = (current?.version ?? 0) + 1
    const row = { version, sealed_value: sealed, updated_at: new Date() }
    await trx
      .insertInto('runtime_secrets')
      .values({ tenant_id: tenantId, name, ...row })
      .onConflict((oc) => oc.columns(['tenant_id', 'name']).doUpdateSet(row))
      .execute()
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'integrity.secret.set',
      target: { kind: 'secret', id: name },
      outcome: 'success',
      details: { version },
    })
    return { name, version }
  })
}

/** The device's P-256 key agreement key for receiving secrets; it replaces an earlier one. */
export async function registerSecretsKey(
  ctx: Pick<ServerContext, 'db'>,
  device: DevicePrincipal,
  publicJwk: JWK,
): Promise<void> {
  try {
    await runtimeSecretSuite().kem.importKey('jwk', { ...publicJwk }, true)
  } catch {
    throw new Problem('identity/unsupported-key', 'the secrets key must be a P-256 public key')
  }
  const row = { public_jwk: JSON.stringify(publicJwk), created_at: new Date() }
  await ctx.db
    .insertInto('device_secret_keys')
    .values({ tenant_id: device.tenantId, device_id: device.deviceId, ...row })
    .onConflict((oc) => oc.columns(['tenant_id', 'device_id']).doUpdateSet(row))
    .execute()
}

/**
 * Delivers a secret to an attested device (the gate has checked its integrity token): the current version, sealed
 * with HPKE to the device's secrets key and bound to tenant, name, version and device. Every delivery is audited.
 */
export async function deliverRuntimeSecret(
  ctx: Pick<ServerContext, 'db' | 'keyring'>,
  device: DevicePrincipal,
  name: string,
): Promise<SealedSecret> {
  const [secret, key] = await Promise.all([
    ctx.db
      .selectFrom('runtime_secrets')
      .select(['version', 'sealed_value'])
      .where('tenant_id', '=', device.tenantId)
      .where('name', '=', name)
      .executeTakeFirst(),
    ctx.db
      .selectFrom('device_secret_keys')
      .select('public_jwk')
      .where('tenant_id', '=', device.tenantId)
      .where('device_id', '=', device.deviceId)
      .executeTakeFirst(),
  ])
  if (!secret) throw new Problem('request/not-found', 'no such secret')
  if (!key) throw new Problem('integrity/no-secrets-key')
  const value = await ctx.keyring.decrypt(device.tenantId, field(device.tenantId, name), secret.sealed_value)
  const suite = runtimeSecretSuite()
  const recipientPublicKey = await suite.kem.importKey('jwk', JSON.parse(key.public_jwk) as JsonWebKey, true)
  const { info, aad } = runtimeSecretContext(device.tenantId, name, secret.version, device.deviceId)
  // HPKE takes whole ArrayBuffers: copy the value out of Node's shared buffer pool into one of its own.
  const plaintext = Uint8Array.from(value)
  value.fill(0)
  const sealed = await suite.seal(
    { recipientPublicKey, info: info.buffer as ArrayBuffer },
    plaintext.buffer,
    aad.buffer as ArrayBuffer,
  )
  plaintext.fill(0)
  await recordAudit(ctx.db, {
    tenantId: device.tenantId,
    actor: { kind: 'device', id: device.deviceId },
    action: 'integrity.secret.deliver',
    target: { kind: 'secret', id: name },
    outcome: 'success',
    details: { version: secret.version },
  })
  return {
    name,
    version: secret.version,
    tenantId: device.tenantId,
    deviceId: device.deviceId,
    enc: base64url.encode(new Uint8Array(sealed.enc)),
    ciphertext: base64url.encode(new Uint8Array(sealed.ct)),
  }
}
