import { PIN_SET_TYPE, type PinSet } from '@strongroom/sdk/pins-node'
import { exportJWK, type JWK } from 'jose'
import type { Kysely } from 'kysely'
import type { Database } from '../platform/db/schema.ts'
import { signCompactJws } from '../platform/keyring/jws.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import { verificationKeys } from '../platform/keyring/signing-keys.ts'

const PIN = /^[A-Za-z0-9+/]{43}=$/

export class PinSetRotationError extends Error {}

/**
 * Publishes a new pin set with `host` pinned to `pins` (other hosts kept as they were), valid from now for `days`.
 * Rotation must overlap: a host's new pins must keep at least one of its current ones, so apps that have not yet
 * fetched the new set still reach it; `force` overrides that for an emergency (a compromised key).
 */
export async function publishPinSet(
  db: Kysely<Database>,
  key: SigningKey,
  input: { host: string; pins: string[]; days: number; force?: boolean },
): Promise<PinSet> {
  if (input.pins.length === 0 || !input.pins.every((pin) => PIN.test(pin))) {
    throw new PinSetRotationError('each pin is the base64 SHA-256 of a SubjectPublicKeyInfo (44 characters)')
  }
  const current = await currentPinSet(db)
  const previous = current?.set.hosts[input.host]
  if (previous && !input.force && !previous.some((pin) => input.pins.includes(pin))) {
    throw new PinSetRotationError(
      `the new pins for ${input.host} keep none of the current ones; add the new pin first, or use --force`,
    )
  }
  const now = new Date()
  const set: PinSet = {
    version: (current?.set.version ?? 0) + 1,
    notBefore: now.toISOString(),
    notAfter: new Date(now.getTime() + input.days * 86_400_000).toISOString(),
    hosts: { ...current?.set.hosts, [input.host]: [...new Set(input.pins)] },
  }
  const document = signCompactJws(key, { typ: PIN_SET_TYPE }, Buffer.from(JSON.stringify(set), 'utf8'))
  await db.insertInto('pin_sets').values({ version: set.version, document, created_at: now }).execute()
  return set
}

/** The newest pin set, as published (the signed document) and as read. */
export async function currentPinSet(db: Kysely<Database>): Promise<{ document: string; set: PinSet } | undefined> {
  const row = await db.selectFrom('pin_sets').select('document').orderBy('version', 'desc').limit(1).executeTakeFirst()
  if (!row) return undefined
  const payload = row.document.split('.')[1] as string
  return { document: row.document, set: JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as PinSet }
}

/** The public keys apps verify pin sets with: to ship inside the app (it cannot learn them from the pinned host). */
export async function pinSetKeys(db: Kysely<Database>): Promise<JWK[]> {
  const keys = await verificationKeys(db, 'pin-set')
  return Promise.all([...keys].map(async ([kid, key]) => ({ ...(await exportJWK(key)), kid, alg: 'ES256' })))
}
