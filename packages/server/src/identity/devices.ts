import type { EnrolmentEvidence } from '@strongroom/sdk/protocol'
import type { JWK } from 'jose'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import type { DeviceKind, DevicePrincipal } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId, newSecret, secretHash } from '../platform/ids.ts'
import type { VerifiedProof } from './dpop.ts'
import { normalizeEnrolmentCode } from './enrolment-codes.ts'

/**
 * Where a device is in its life: `pending` from the enrolment code staff issued for it until the device enrols with
 * it (or the code expires); `active` once enrolled; `suspended` while cut off for a while (a phone mislaid), resumed to
 * `active`; `revoked` for good (a phone lost), after which its key gets only a wipe command.
 */
export type DeviceStatus = 'pending' | 'active' | 'suspended' | 'revoked'

export interface Device {
  id: string
  customerId: string
  /** An app, or a browser (the secure chat a pivot link opened); pending devices are apps (an enrolment code's). */
  kind: DeviceKind
  /** Null while pending: the device names itself when it enrols. */
  label: string | null
  status: DeviceStatus
  /** Null while pending: there is no key yet. */
  keyThumbprint: string | null
  createdAt: string
  /** Pending only: when the enrolment code expires unused (the entry then goes). */
  enrolmentExpiresAt?: string
}

/** Defined with the other principals in platform/http, where the access rules need it; exported here for callers. */
export type { DeviceKind, DevicePrincipal }

export interface IssuedAccessToken {
  accessToken: string
  tokenType: 'DPoP'
  expiresIn: number
}

type Ctx = Pick<ServerContext, 'db' | 'config'>

/**
 * The check of an enrolment's evidence (or of its absence, where the bank requires evidence), injected by the
 * integrity capability: it runs before the enrolment (its refusals audited there) and answers what to check and
 * record inside the enrolment's transaction, once the device exists; that fails, and the enrolment with it, when the
 * evidence was not for this code's device or its challenge is used.
 */
export type EnrolmentAttestation = (
  proof: VerifiedProof,
  enrolment: { enrolmentCode: string; evidence: EnrolmentEvidence | undefined },
) => Promise<(trx: ServerContext['db'], device: { tenantId: string; deviceId: string }) => Promise<void>>

/**
 * Enrols the key that signed the DPoP proof as a new device of the customer the code was issued for. The code is
 * consumed in the same transaction that creates the device, so two devices racing with one code get one device.
 * With attestation evidence, the attested key is recorded in the same transaction.
 */
export async function enrolDevice(
  ctx: Ctx,
  proof: VerifiedProof,
  input: { enrolmentCode: string; label: string },
  attested?: (trx: ServerContext['db'], device: { tenantId: string; deviceId: string }) => Promise<void>,
): Promise<{ device: Device; tenantId: string; token: IssuedAccessToken }> {
  const now = new Date()
  return ctx.db.transaction().execute(async (trx) => {
    const code = await trx
      .updateTable('enrolment_codes')
      .set({ used_at: now })
      .where('code_hash', '=', secretHash(normalizeEnrolmentCode(input.enrolmentCode)))
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .returning(['tenant_id', 'customer_id', 'device_id'])
      .executeTakeFirst()
    if (!code) throw new Problem('identity/invalid-enrolment-code')
    // The code reserved the id the pending device was listed under (codes issued before that had none).
    const deviceId = code.device_id ?? newId('dev')
    const enrolled = await enrolDeviceIn(ctx, trx, proof, {
      deviceId,
      kind: 'app',
      tenantId: code.tenant_id,
      customerId: code.customer_id,
      label: input.label,
      via: 'enrolment-code',
      now,
    })
    await attested?.(trx, { tenantId: code.tenant_id, deviceId })
    return enrolled
  })
}

/**
 * Enrols the proven key as a new active device of a customer inside the caller's transaction, with its first access
 * token, audited. The caller has established who the customer is (a single-use code, a pivot link and a fresh
 * factor), and `via` says how. A key already enrolled (by any customer) is refused.
 */
export async function enrolDeviceIn(
  ctx: Ctx,
  trx: ServerContext['db'],
  proof: VerifiedProof,
  input: {
    deviceId: string
    kind: DeviceKind
    tenantId: string
    customerId: string
    label: string
    via: 'enrolment-code' | 'pivot-passkey' | 'pivot-sms-otp'
    now: Date
  },
): Promise<{ device: Device; tenantId: string; token: IssuedAccessToken }> {
  const { deviceId, tenantId, customerId, now } = input
  const inserted = await trx
    .insertInto('devices')
    .values({
      tenant_id: tenantId,
      id: deviceId,
      customer_id: customerId,
      jkt: proof.jkt,
      public_jwk: JSON.stringify(publicPart(proof.jwk)),
      label: input.label,
      status: 'active',
      created_at: now,
      kind: input.kind,
    })
    .onConflict((oc) => oc.column('jkt').doNothing())
    .executeTakeFirst()
  if ((inserted.numInsertedOrUpdatedRows ?? 0n) === 0n) throw new Problem('identity/device-key-in-use')
  const token = await insertAccessToken(ctx, trx, tenantId, deviceId, proof.jkt)
  await recordAudit(trx, {
    tenantId,
    actor: { kind: 'device', id: deviceId },
    action: 'device.enrol',
    target: { kind: 'device', id: deviceId },
    outcome: 'success',
    details: { customerId, keyThumbprint: proof.jkt, via: input.via, deviceKind: input.kind },
  })
  return {
    tenantId,
    token,
    device: {
      id: deviceId,
      customerId,
      kind: input.kind,
      label: input.label,
      status: 'active',
      keyThumbprint: proof.jkt,
      createdAt: now.toISOString(),
    },
  }
}

function publicPart(jwk: JWK): JWK {
  const { kty, crv, x, y } = jwk
  return y === undefined ? { kty, crv, x } : { kty, crv, x, y }
}

async function insertAccessToken(
  ctx: Ctx,
  db: ServerContext['db'],
  tenantId: string,
  deviceId: string,
  jkt: string,
): Promise<IssuedAccessToken> {
  const accessToken = newSecret('srd')
  const ttl = ctx.config.accessTokenTtlSeconds
  await db
    .insertInto('access_tokens')
    .values({
      token_hash: secretHash(accessToken),
      tenant_id: tenantId,
      device_id: deviceId,
      jkt,
      expires_at: new Date(Date.now() + ttl * 1000),
      created_at: new Date(),
    })
    .execute()
  return { accessToken, tokenType: 'DPoP', expiresIn: ttl }
}

/**
 * Replaces an active device's key with a new one (Android re-keying to a freshly attested key), in the caller's
 * transaction: the old key's access tokens end, and a token bound to the new key is issued. Audited. A key another
 * device holds is refused.
 */
export async function rotateDeviceKeyIn(
  ctx: Ctx,
  trx: ServerContext['db'],
  device: Pick<DevicePrincipal, 'tenantId' | 'deviceId' | 'jkt'>,
  next: { jwk: JWK; jkt: string; reason: string },
): Promise<IssuedAccessToken> {
  const taken = await trx.selectFrom('devices').select('id').where('jkt', '=', next.jkt).executeTakeFirst()
  if (taken) throw new Problem('identity/device-key-in-use')
  const updated = await trx
    .updateTable('devices')
    .set({ jkt: next.jkt, public_jwk: JSON.stringify(publicPart(next.jwk)) })
    .where('tenant_id', '=', device.tenantId)
    .where('id', '=', device.deviceId)
    .where('jkt', '=', device.jkt)
    .where('status', '=', 'active')
    .executeTakeFirst()
  if ((updated.numUpdatedRows ?? 0n) === 0n) throw new Problem('auth/invalid-token', 'no active device holds this key')
  await trx.deleteFrom('access_tokens').where('device_id', '=', device.deviceId).execute()
  const token = await insertAccessToken(ctx, trx, device.tenantId, device.deviceId, next.jkt)
  await recordAudit(trx, {
    tenantId: device.tenantId,
    actor: { kind: 'device', id: device.deviceId },
    action: 'device.rekey',
    target: { kind: 'device', id: device.deviceId },
    outcome: 'success',
    reason: next.reason,
    details: { previousKeyThumbprint: device.jkt, keyThumbprint: next.jkt },
  })
  return token
}

/**
 * A fresh access token for the active device whose key signed the proof: the device key is the credential, so a
 * device renews its token without any long-lived secret.
 */
export async function issueDeviceToken(ctx: Ctx, proof: VerifiedProof): Promise<IssuedAccessToken> {
  const device = await ctx.db
    .selectFrom('devices')
    .select(['tenant_id', 'id'])
    .where('jkt', '=', proof.jkt)
    .where('status', '=', 'active')
    .executeTakeFirst()
  if (!device) throw new Problem('auth/invalid-token', 'no active device holds this key')
  return insertAccessToken(ctx, ctx.db, device.tenant_id, device.id, proof.jkt)
}

/**
 * The device principal an access token stands for. Undefined when the token is unknown or expired or its device is
 * no longer active; the caller then checks the DPoP proof's key against `jkt`.
 */
export async function authenticateDeviceToken(
  ctx: Pick<ServerContext, 'db'>,
  accessToken: string,
): Promise<DevicePrincipal | undefined> {
  if (!accessToken.startsWith('srd_') || accessToken.length > 100) return undefined
  const row = await ctx.db
    .selectFrom('access_tokens')
    .innerJoin('devices', 'devices.id', 'access_tokens.device_id')
    .select(['access_tokens.tenant_id', 'access_tokens.device_id', 'access_tokens.jkt', 'access_tokens.expires_at'])
    .select(['devices.customer_id', 'devices.kind'])
    .where('access_tokens.token_hash', '=', secretHash(accessToken))
    .where('access_tokens.expires_at', '>', new Date())
    .where('devices.status', '=', 'active')
    .executeTakeFirst()
  if (!row) return undefined
  return {
    kind: 'device',
    deviceKind: row.kind,
    tenantId: row.tenant_id,
    deviceId: row.device_id,
    customerId: row.customer_id,
    jkt: row.jkt,
    tokenExpiresAt: new Date(row.expires_at),
  }
}

function toDevice(row: {
  id: string
  kind: DeviceKind
  customer_id: string
  label: string
  status: Exclude<DeviceStatus, 'pending'>
  jkt: string
  created_at: Date | string
}): Device {
  return {
    id: row.id,
    customerId: row.customer_id,
    kind: row.kind,
    label: row.label,
    status: row.status,
    keyThumbprint: row.jkt,
    createdAt: new Date(row.created_at).toISOString(),
  }
}

/**
 * A customer's devices in every state, oldest first, then those still pending enrolment: the customer (from any of
 * their devices) and staff see at once a device being added that nobody expected.
 */
export async function listCustomerDevices(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  customerId: string,
): Promise<Device[]> {
  const rows = await ctx.db
    .selectFrom('devices')
    .select(['id', 'kind', 'customer_id', 'label', 'status', 'jkt', 'created_at'])
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .orderBy('created_at')
    .execute()
  const pending = await ctx.db
    .selectFrom('enrolment_codes')
    .select(['device_id', 'customer_id', 'created_at', 'expires_at'])
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .where('used_at', 'is', null)
    .where('expires_at', '>', new Date())
    .where('device_id', 'is not', null)
    .$narrowType<{ device_id: string }>()
    .orderBy('created_at')
    .execute()
  return [
    ...rows.map(toDevice),
    ...pending.map((code) => ({
      id: code.device_id,
      customerId: code.customer_id,
      kind: 'app' as const,
      label: null,
      status: 'pending' as const,
      keyThumbprint: null,
      createdAt: new Date(code.created_at).toISOString(),
      enrolmentExpiresAt: new Date(code.expires_at).toISOString(),
    })),
  ]
}

/** Who changes a device's state, and why. */
export interface DeviceStateChange {
  actor: Actor
  reason?: string | undefined
  /** Only a device of this customer (a customer acting from another of their devices). */
  customerId?: string | undefined
}

/**
 * Locks an enrolled device of the tenant for a change of state, in the caller's transaction. With `customerId`, only
 * that customer's device is found (a customer acting from another of their devices); another's answers not-found.
 */
export async function lockDevice(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  deviceId: string,
  customerId: string | undefined,
) {
  let query = ctx.db
    .selectFrom('devices')
    .select(['id', 'customer_id', 'status'])
    .where('tenant_id', '=', tenantId)
    .where('id', '=', deviceId)
  if (customerId) query = query.where('customer_id', '=', customerId)
  const device = await query.forUpdate().executeTakeFirst()
  if (!device) throw new Problem('request/not-found', 'no such device')
  return device
}

/** Sets an enrolled device's state and deletes its access tokens, so that no node accepts them from now on. */
export async function setDeviceStatus(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  deviceId: string,
  status: Exclude<DeviceStatus, 'pending'>,
): Promise<void> {
  await ctx.db
    .updateTable('devices')
    .set({ status })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', deviceId)
    .execute()
  await ctx.db.deleteFrom('access_tokens').where('tenant_id', '=', tenantId).where('device_id', '=', deviceId).execute()
}

/** Forgets access tokens that have expired; called by the housekeeping timer. */
export async function purgeExpiredAccessTokens(ctx: Pick<ServerContext, 'db'>): Promise<void> {
  await ctx.db.deleteFrom('access_tokens').where('expires_at', '<', new Date()).execute()
}

/** The ids of a customer's active devices, or of those among `only` that are. */
export async function activeDeviceIds(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  customerId: string,
  only?: string[],
): Promise<string[]> {
  if (only?.length === 0) return []
  let query = ctx.db
    .selectFrom('devices')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .where('status', '=', 'active')
  if (only) query = query.where('id', 'in', only)
  return (await query.execute()).map((row) => row.id)
}

/** The public key a device enrolled with, to verify what it signs. */
export async function devicePublicJwk(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  deviceId: string,
): Promise<JWK> {
  const row = await ctx.db
    .selectFrom('devices')
    .select('public_jwk')
    .where('tenant_id', '=', tenantId)
    .where('id', '=', deviceId)
    .executeTakeFirst()
  if (!row) throw new Problem('request/not-found', 'no such device')
  return JSON.parse(row.public_jwk) as JWK
}

/** When a device enrolled (the step-up policy treats new devices with care). */
export async function deviceEnrolledAt(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  deviceId: string,
): Promise<Date> {
  const row = await ctx.db
    .selectFrom('devices')
    .select('created_at')
    .where('tenant_id', '=', tenantId)
    .where('id', '=', deviceId)
    .executeTakeFirst()
  if (!row) throw new Problem('request/not-found', 'no such device')
  return new Date(row.created_at)
}

/** Whose device it is, or undefined for none in the tenant (the archive files device events under the customer). */
export async function deviceCustomerId(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  deviceId: string,
): Promise<string | undefined> {
  const row = await ctx.db
    .selectFrom('devices')
    .select('customer_id')
    .where('tenant_id', '=', tenantId)
    .where('id', '=', deviceId)
    .executeTakeFirst()
  return row?.customer_id
}

/** What shows how a device came to be the customer's: when and by what it enrolled, and the audit event saying so. */
export interface DeviceEnrolmentEvidence {
  enrolledAt: string
  /** The enrolment path: an enrolment code, the pivot's SMS code or passkey. */
  via: string | null
  /** The `device.enrol` event in the tenant's audit chain (its id; `strongroom audit verify` vouches for it). */
  auditEventId: number | null
}

export async function deviceEnrolmentEvidence(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  deviceId: string,
): Promise<DeviceEnrolmentEvidence> {
  const enrolledAt = await deviceEnrolledAt(ctx, tenantId, deviceId)
  const event = await ctx.db
    .selectFrom('audit_events')
    .select(['id', 'details'])
    .where('tenant_id', '=', tenantId)
    .where('action', '=', 'device.enrol')
    .where('target_id', '=', deviceId)
    .where('outcome', '=', 'success')
    .orderBy('id')
    .executeTakeFirst()
  const via = event ? (JSON.parse(event.details) as { via?: unknown }).via : undefined
  return {
    enrolledAt: enrolledAt.toISOString(),
    via: typeof via === 'string' ? via : null,
    auditEventId: event ? Number(event.id) : null,
  }
}
