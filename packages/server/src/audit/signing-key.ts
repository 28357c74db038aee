import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Database } from '../platform/db/schema.ts'
import type { KeyProvider } from '../platform/keyring/key-provider.ts'

const AUDIT_KEY_ID = 'audit-ed25519-1'

export interface CheckpointSigner {
  readonly keyId: string
  sign(statement: Buffer): Buffer
}

function wrapAad(id: string): Buffer {
  return Buffer.from(`strongroom:signing-key:${id}`, 'utf8')
}

/**
 * The Ed25519 key that signs audit checkpoints: made once per deployment (the first node to need it wins), its private
 * half wrapped by the key-encryption key, its public half stored in clear for anyone who verifies.
 */
export async function openCheckpointSigner(db: Kysely<Database>, provider: KeyProvider): Promise<CheckpointSigner> {
  let row = await db.selectFrom('signing_keys').selectAll().where('id', '=', AUDIT_KEY_ID).executeTakeFirst()
  if (!row) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519')
    const { kekId, wrapped } = await provider.wrap(
      privateKey.export({ format: 'der', type: 'pkcs8' }),
      wrapAad(AUDIT_KEY_ID),
    )
    await db
      .insertInto('signing_keys')
      .values({
        id: AUDIT_KEY_ID,
        purpose: 'audit-checkpoint',
        public_key: publicKey.export({ format: 'der', type: 'spki' }),
        kek_id: kekId,
        wrapped_private_key: wrapped,
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute()
    row = await db.selectFrom('signing_keys').selectAll().where('id', '=', AUDIT_KEY_ID).executeTakeFirstOrThrow()
  }
  const der = await provider.unwrap(row.kek_id, Buffer.from(row.wrapped_private_key), wrapAad(row.id))
  const privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
  return { keyId: row.id, sign: (statement) => sign(null, statement, privateKey) }
}

/** The public keys that verify checkpoints, by key id. */
export async function checkpointVerificationKeys(db: Kysely<Database>): Promise<Map<string, KeyObject>> {
  const rows = await db.selectFrom('signing_keys').select(['id', 'public_key']).execute()
  return new Map(
    rows.map((row) => [row.id, createPublicKey({ key: Buffer.from(row.public_key), format: 'der', type: 'spki' })]),
  )
}

/** Key rotation re-wraps signing keys too (the KEK changed; the signing key stays, so old checkpoints still verify). */
export async function rewrapSigningKeys(db: Kysely<Database>, provider: KeyProvider): Promise<number> {
  const current = await provider.currentKekId()
  return db.transaction().execute(async (trx) => {
    const rows = await trx.selectFrom('signing_keys').selectAll().where('kek_id', '!=', current).forUpdate().execute()
    for (const row of rows) {
      const der = await provider.unwrap(row.kek_id, Buffer.from(row.wrapped_private_key), wrapAad(row.id))
      const { kekId, wrapped } = await provider.wrap(der, wrapAad(row.id))
      await trx
        .updateTable('signing_keys')
        .set({ kek_id: kekId, wrapped_private_key: wrapped })
        .where('id', '=', row.id)
        .execute()
    }
    return rows.length
  })
}
