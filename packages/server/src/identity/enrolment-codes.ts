import { randomInt } from 'node:crypto'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { newId, secretHash } from '../platform/ids.ts'
import { requireCustomer } from './customers.ts'

// Crockford's base32 without the letters people misread; 16 characters carry 80 bits.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
const CODE_LENGTH = 16

export interface IssuedEnrolmentCode {
  code: string
  expiresAt: string
  /** The id the device will have: listed as pending until it enrols with the code. */
  deviceId: string
}

/** Canonical form of a code as a person may type it: case and dashes do not matter. */
export function normalizeEnrolmentCode(code: string): string {
  return code.toUpperCase().replace(/[\s-]/g, '')
}

/**
 * Issues a single-use code with which one device of this customer can enrol, and reserves that device's id: the
 * device is listed as pending until then. Only the code's hash is stored.
 */
export async function issueEnrolmentCode(
  ctx: Pick<ServerContext, 'db' | 'config'>,
  tenantId: string,
  customerId: string,
  actor: Actor,
): Promise<IssuedEnrolmentCode> {
  await requireCustomer(ctx, tenantId, customerId)
  let raw = ''
  for (let i = 0; i < CODE_LENGTH; i++) raw += ALPHABET[randomInt(ALPHABET.length)]
  const expiresAt = new Date(Date.now() + ctx.config.enrolmentCodeTtlSeconds * 1000)
  const id = newId('enr')
  const deviceId = newId('dev')
  await ctx.db.transaction().execute(async (trx) => {
    await trx
      .insertInto('enrolment_codes')
      .values({
        tenant_id: tenantId,
        id,
        customer_id: customerId,
        code_hash: secretHash(raw),
        created_by: actor.id ?? actor.kind,
        expires_at: expiresAt,
        used_at: null,
        device_id: deviceId,
        created_at: new Date(),
      })
      .execute()
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'device.enrolment-code.issue',
      target: { kind: 'customer', id: customerId },
      outcome: 'success',
      details: { enrolmentCodeId: id, deviceId, expiresAt: expiresAt.toISOString() },
    })
  })
  return { code: raw.match(/.{4}/g)?.join('-') ?? raw, expiresAt: expiresAt.toISOString(), deviceId }
}

/**
 * The tenant and reserved device id of an enrolment code still usable, without using it up (an app asks for an
 * attestation challenge with it before it generates the key it will enrol). Codes issued before devices were
 * reserved answer undefined.
 */
export async function pendingEnrolment(
  ctx: Pick<ServerContext, 'db'>,
  enrolmentCode: string,
): Promise<{ tenantId: string; deviceId: string } | undefined> {
  const row = await ctx.db
    .selectFrom('enrolment_codes')
    .select(['tenant_id', 'device_id'])
    .where('code_hash', '=', secretHash(normalizeEnrolmentCode(enrolmentCode)))
    .where('used_at', 'is', null)
    .where('expires_at', '>', new Date())
    .executeTakeFirst()
  return row?.device_id ? { tenantId: row.tenant_id, deviceId: row.device_id } : undefined
}
