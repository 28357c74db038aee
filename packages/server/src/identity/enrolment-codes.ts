import { randomInt } from 'node:crypto'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId, secretHash } from '../platform/ids.ts'

// Crockford's base32 without the letters people misread; 16 characters carry 80 bits.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
const CODE_LENGTH = 16

export interface IssuedEnrolmentCode {
  code: string
  expiresAt: string
}

/** Canonical form of a code as a person may type it: case and dashes do not matter. */
export function normalizeEnrolmentCode(code: string): string {
  return code.toUpperCase().replace(/[\s-]/g, '')
}

/** Issues a single-use code with which one device of this customer can enrol. Only its hash is stored. */
export async function issueEnrolmentCode(
  ctx: Pick<ServerContext, 'db' | 'config'>,
  tenantId: string,
  customerId: string,
  issuedBy: string,
): Promise<IssuedEnrolmentCode> {
  const customer = await ctx.db
    .selectFrom('customers')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('id', '=', customerId)
    .executeTakeFirst()
  if (!customer) throw new Problem('request/not-found', 'no such customer')
  let raw = ''
  for (let i = 0; i < CODE_LENGTH; i++) raw += ALPHABET[randomInt(ALPHABET.length)]
  const expiresAt = new Date(Date.now() + ctx.config.enrolmentCodeTtlSeconds * 1000)
  await ctx.db
    .insertInto('enrolment_codes')
    .values({
      tenant_id: tenantId,
      id: newId('enr'),
      customer_id: customerId,
      code_hash: secretHash(raw),
      created_by: issuedBy,
      expires_at: expiresAt,
      used_at: null,
      device_id: null,
      created_at: new Date(),
    })
    .execute()
  return { code: raw.match(/.{4}/g)?.join('-') ?? raw, expiresAt: expiresAt.toISOString() }
}
