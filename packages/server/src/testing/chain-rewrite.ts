import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto'
import { sql } from 'kysely'
import { archiveRecordHash, chainedFields } from '../archive/record-hash.ts'
import { recordHash } from '../audit/record-hash.ts'
import type { Db } from '../platform/db/database.ts'
import { ChainLinker, emptyChainHead } from '../platform/hash-chain/linker.ts'
import type { SigningAlgorithm } from '../platform/keyring/key-provider.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'

/** A key of the attacker's own (Ed25519 unless asked for P-256), under the key id they choose. */
export function attackerKey(
  id: string,
  algorithm: SigningAlgorithm = 'ed25519',
): SigningKey & { privateKey: KeyObject } {
  if (algorithm === 'p256') {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const sign256 = (message: Uint8Array) => sign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' })
    return { id, algorithm, privateKey, publicKey, sign: sign256 }
  }
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return { id, algorithm, privateKey, publicKey, sign: (message) => sign(null, message, privateKey) }
}

/**
 * What someone with write access to the database does after changing or deleting records: numbers the records left
 * from 1 again, recomputes every hash and Merkle tree head, and signs a checkpoint every `everyRecords` records and
 * one over the whole chain with `signer`, replacing the stored checkpoints. Nothing here is out of an attacker's reach
 * but the signing key itself (which the tests hand over when the attack assumes a stolen key).
 */
export async function rewriteChain(
  db: Db,
  kind: 'audit' | 'archive',
  tenantId: string,
  signer: SigningKey,
  everyRecords: number,
): Promise<void> {
  const linker = new ChainLinker(kind, tenantId, emptyChainHead(), signer, {
    everyRecords,
    everySeconds: Number.MAX_SAFE_INTEGER,
  })
  const records = kind === 'audit' ? 'audit_events' : 'archive_records'
  const rows =
    kind === 'audit'
      ? await db.selectFrom('audit_events').selectAll().where('tenant_id', '=', tenantId).orderBy('seq').execute()
      : await db.selectFrom('archive_records').selectAll().where('tenant_id', '=', tenantId).orderBy('seq').execute()
  const links = rows.map((row) => ({
    id: row.id,
    ...linker.link(
      (previous, seq) =>
        'action' in row
          ? recordHash(previous, { ...row, seq })
          : archiveRecordHash(previous, chainedFields({ ...row, seq })),
      false,
    ),
  }))
  linker.checkpoint()
  await db.transaction().execute(async (trx) => {
    await sql`update ${sql.table(records)} set seq = -seq where tenant_id = ${tenantId}`.execute(trx)
    for (const link of links) {
      await sql`update ${sql.table(records)} set seq = ${link.seq}, prev_hash = ${link.prev}, hash = ${link.hash}
        where id = ${link.id}`.execute(trx)
    }
    const checkpoints = kind === 'audit' ? 'audit_checkpoints' : 'archive_checkpoints'
    await trx.deleteFrom(checkpoints).where('tenant_id', '=', tenantId).execute()
    await trx.insertInto(checkpoints).values(linker.checkpoints).execute()
    await trx
      .updateTable(kind === 'audit' ? 'audit_chains' : 'archive_chains')
      .set(linker.head())
      .where('tenant_id', '=', tenantId)
      .execute()
  })
}

/** Appends a record after the newest one, linked and hashed as the chainer would, but never checkpointed. */
export async function forgeAuditTail(db: Db, tenantId: string): Promise<number> {
  const last = await db
    .selectFrom('audit_events')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirstOrThrow()
  const { id: _, seq: lastSeq, hash, prev_hash: __, ...fields } = last
  const forged = { ...fields, seq: Number(lastSeq) + 1, reason: 'forged after the newest checkpoint' }
  await db
    .insertInto('audit_events')
    .values({ ...forged, prev_hash: hash, hash: recordHash(hash as Uint8Array, forged) })
    .execute()
  return forged.seq
}
