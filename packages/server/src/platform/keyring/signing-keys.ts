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

/** Whose key it is: the deployment's (`undefined`), or one bank's. */
type Owner = string | undefined

/** Key ids: `consent-receipt-2` for the deployment's, `consent-receipt-ten_x-2` for a bank's own. */
function idPrefix(purpose: SigningKeyPurpose, tenantId: Owner): string {
  return tenantId === undefined ? `${purpose}-` : `${purpose}-${tenantId}-`
}

/**
 * The current signing key for a purpose, the deployment's or (with `tenantId`) one bank's: made on first need (the
 * first node wins a race), its private half kept by the key provider (wrapped by the KEK, or inside the HSM), its
 * public half stored in clear for whoever verifies. Older keys stay, so what they signed still verifies.
 */
export async function openSigningKey(
  db: Kysely<Database>,
  provider: KeyProvider,
  purpose: SigningKeyPurpose,
  tenantId?: string,
): Promise<SigningKey> {
  const newest = () =>
    db
      .selectFrom('signing_keys')
      .selectAll()
      .where('purpose', '=', purpose)
      .where((eb) => (tenantId === undefined ? eb('tenant_id', 'is', null) : eb('tenant_id', '=', tenantId)))
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .executeTakeFirst()
  let row = await newest()
  if (!row) {
    await insertSigningKey(db, provider, purpose, `${idPrefix(purpose, tenantId)}1`, tenantId)
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

/**
 * A purpose's signing keys per bank (receipts, audit and archive checkpoints): each bank's own key, opened (or made)
 * on first need and then kept, so that one bank's key never signs another's evidence.
 */
export class TenantSigningKeys {
  readonly #db: Kysely<Database>
  readonly #provider: KeyProvider
  readonly #purpose: SigningKeyPurpose
  readonly #open = new Map<string, Promise<SigningKey>>()

  constructor(db: Kysely<Database>, provider: KeyProvider, purpose: SigningKeyPurpose) {
    this.#db = db
    this.#provider = provider
    this.#purpose = purpose
  }

  for(tenantId: string): Promise<SigningKey> {
    let key = this.#open.get(tenantId)
    if (!key) {
      key = openSigningKey(this.#db, this.#provider, this.#purpose, tenantId)
      key.catch(() => this.#open.delete(tenantId))
      this.#open.set(tenantId, key)
    }
    return key
  }
}

async function insertSigningKey(
  db: Kysely<Database>,
  provider: KeyProvider,
  purpose: SigningKeyPurpose,
  id: string,
  tenantId: Owner,
): Promise<void> {
  const { kekId, privateKey, publicKey } = await provider.generateSigningKey(algorithms[purpose], wrapAad(id))
  await db
    .insertInto('signing_keys')
    .values({
      id,
      purpose,
      tenant_id: tenantId ?? null,
      public_key: publicKey,
      kek_id: kekId,
      wrapped_private_key: privateKey,
    })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute()
}

/**
 * Makes a new signing key for a purpose (the deployment's, or one bank's); nodes sign with it from their next start,
 * and the old keys stay, so what they signed (receipts, checkpoints) still verifies. Returns the new key's id.
 */
export async function rotateSigningKey(
  db: Kysely<Database>,
  provider: KeyProvider,
  purpose: SigningKeyPurpose,
  tenantId?: string,
): Promise<string> {
  const prefix = idPrefix(purpose, tenantId)
  const existing = await db
    .selectFrom('signing_keys')
    .select('id')
    .where('purpose', '=', purpose)
    .where((eb) => (tenantId === undefined ? eb('tenant_id', 'is', null) : eb('tenant_id', '=', tenantId)))
    .execute()
  const next = Math.max(0, ...existing.map((r) => Number(r.id.slice(prefix.length)) || 0)) + 1
  const id = `${prefix}${next}`
  await insertSigningKey(db, provider, purpose, id, tenantId)
  return id
}

/** A public key that verifies, and the bank it belongs to (none: the deployment's). */
export interface VerificationKey {
  key: KeyObject
  tenantId: string | undefined
}

/**
 * The public keys of a purpose, by key id, old keys included: every one, or (with `tenantId`) those that may sign
 * for that bank: its own and the deployment's (which signed everything before banks had keys of their own).
 */
export async function verificationKeys(
  db: Kysely<Database>,
  purpose: SigningKeyPurpose,
  options: { tenantId?: string } = {},
): Promise<Map<string, KeyObject>> {
  return new Map([...(await ownedVerificationKeys(db, purpose, options))].map(([kid, { key }]) => [kid, key]))
}

/** The same keys with the bank each belongs to: what `keys export-public` writes. */
export async function ownedVerificationKeys(
  db: Kysely<Database>,
  purpose: SigningKeyPurpose,
  options: { tenantId?: string } = {},
): Promise<Map<string, VerificationKey>> {
  const { tenantId } = options
  const rows = await db
    .selectFrom('signing_keys')
    .select(['id', 'public_key', 'tenant_id'])
    .where('purpose', '=', purpose)
    .$if(tenantId !== undefined, (q) =>
      q.where((eb) => eb.or([eb('tenant_id', 'is', null), eb('tenant_id', '=', tenantId as string)])),
    )
    .orderBy('created_at')
    .orderBy('id')
    .execute()
  return new Map(
    rows.map((row) => [
      row.id,
      {
        key: createPublicKey({ key: Buffer.from(row.public_key), format: 'der', type: 'spki' }),
        tenantId: row.tenant_id ?? undefined,
      },
    ]),
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
