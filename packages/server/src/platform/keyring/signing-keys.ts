import { createPublicKey, type KeyObject } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { KeyProvider, Signer, SigningAlgorithm } from './key-provider.ts'

/**
 * What a signing key is for, and so its algorithm: Ed25519 for audit and archive checkpoints and the MLS credential
 * authority, P-256 (ES256) for JWS receipts, integrity tokens and pin sets.
 */
export type SigningKeyPurpose =
  | 'audit-checkpoint'
  | 'archive-checkpoint'
  | 'consent-receipt'
  | 'integrity-token'
  | 'mls-credential'
  | 'pin-set'
  | 'wipe-command'
const algorithms: Record<SigningKeyPurpose, SigningAlgorithm> = {
  'pin-set': 'p256',
  'audit-checkpoint': 'ed25519',
  'archive-checkpoint': 'ed25519',
  'mls-credential': 'ed25519',
  'consent-receipt': 'p256',
  'integrity-token': 'p256',
  'wipe-command': 'p256',
}

/** A key to sign with: its id, its public half, and a signer (the private half stays with the key provider). */
export interface SigningKey {
  readonly id: string
  readonly algorithm: SigningAlgorithm
  readonly publicKey: KeyObject
  readonly sign: Signer
}

function wrapAad(id: string): Buffer {
  return Buffer.from(`strongroom:signing-key:${id}`, 'utf8')
}

/**
 * The deployment's current signing key for a purpose: made on first need (the first node wins a race), its private
 * half wrapped by the key-encryption key, its public half stored in clear for whoever verifies. Older keys of the
 * purpose stay, so what they signed still verifies after a new one is made.
 */
export async function openSigningKey(
  db: Kysely<Database>,
  provider: KeyProvider,
  purpose: SigningKeyPurpose,
): Promise<SigningKey> {
  const newest = () =>
    db
      .selectFrom('signing_keys')
      .selectAll()
      .where('purpose', '=', purpose)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .executeTakeFirst()
  let row = await newest()
  if (!row) {
    await insertSigningKey(db, provider, purpose, `${purpose}-1`)
    row = (await newest()) as NonNullable<typeof row>
  }
  const algorithm = algorithms[purpose]
  const stored = {
    kekId: row.kek_id,
    privateKey: Buffer.from(row.wrapped_private_key),
    publicKey: Buffer.from(row.public_key),
  }
  return {
    id: row.id,
    algorithm,
    publicKey: createPublicKey({ key: stored.publicKey, format: 'der', type: 'spki' }),
    sign: await provider.signer(algorithm, stored, wrapAad(row.id)),
  }
}

async function insertSigningKey(
  db: Kysely<Database>,
  provider: KeyProvider,
  purpose: SigningKeyPurpose,
  id: string,
): Promise<void> {
  const { kekId, privateKey, publicKey } = await provider.generateSigningKey(algorithms[purpose], wrapAad(id))
  await db
    .insertInto('signing_keys')
    .values({ id, purpose, public_key: publicKey, kek_id: kekId, wrapped_private_key: privateKey })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute()
}

/**
 * Makes a new signing key for a purpose; nodes sign with it from their next start, and the old keys stay, so what
 * they signed (receipts, checkpoints) still verifies. Returns the new key's id.
 */
export async function rotateSigningKey(
  db: Kysely<Database>,
  provider: KeyProvider,
  purpose: SigningKeyPurpose,
): Promise<string> {
  const existing = await db.selectFrom('signing_keys').select('id').where('purpose', '=', purpose).execute()
  const next = Math.max(0, ...existing.map((r) => Number(r.id.slice(purpose.length + 1)) || 0)) + 1
  const id = `${purpose}-${next}`
  await insertSigningKey(db, provider, purpose, id)
  return id
}

/** Every public key of a purpose, by key id: what verifiers need, old keys included. */
export async function verificationKeys(
  db: Kysely<Database>,
  purpose: SigningKeyPurpose,
): Promise<Map<string, KeyObject>> {
  const rows = await db.selectFrom('signing_keys').select(['id', 'public_key']).where('purpose', '=', purpose).execute()
  return new Map(
    rows.map((row) => [row.id, createPublicKey({ key: Buffer.from(row.public_key), format: 'der', type: 'spki' })]),
  )
}

/**
 * After the KEK is rotated, signing keys are re-wrapped under the new one; the keys themselves stay. Keys whose
 * private half lives in the token have nothing to re-wrap.
 */
export async function rewrapSigningKeys(db: Kysely<Database>, provider: KeyProvider): Promise<number> {
  const current = await provider.currentKekId()
  return db.transaction().execute(async (trx) => {
    const rows = await trx.selectFrom('signing_keys').selectAll().where('kek_id', '!=', current).forUpdate().execute()
    let rewrapped = 0
    for (const row of rows) {
      const stored = {
        kekId: row.kek_id,
        privateKey: Buffer.from(row.wrapped_private_key),
        publicKey: Buffer.from(row.public_key),
      }
      const moved = await provider.rewrapSigningKey(stored, wrapAad(row.id))
      if (!moved) continue
      await trx
        .updateTable('signing_keys')
        .set({ kek_id: moved.kekId, wrapped_private_key: moved.privateKey })
        .where('id', '=', row.id)
        .execute()
      rewrapped++
    }
    return rewrapped
  })
}
