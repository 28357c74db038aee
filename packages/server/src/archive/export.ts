import { createHash } from 'node:crypto'
import { type Actor, recordAudit } from '../audit/events.ts'
import { inclusionProofs, leafHash } from '../platform/hash-chain/merkle.ts'
import { Problem } from '../platform/http/problems.ts'
import { type SigningKey, verificationKeys } from '../platform/keyring/signing-keys.ts'
import { type ArchiveContext, archiveKeysOf } from './append.ts'
import { BUNDLE_TYPE, type BundleLine, type BundleManifest, signManifest } from './bundle.ts'
import { checkpointArchiveNow } from './chainer.ts'
import { openRecords } from './open-records.ts'
import { chainedFields } from './record-hash.ts'
import { withRedactions } from './redactions.ts'

export interface ExportCase {
  conversationId?: string | undefined
  customerId?: string | undefined
  from?: Date | undefined
  to?: Date | undefined
}

const PAGE = 1000

/**
 * Exports a case (a conversation or a customer, optionally time-bounded) as a signed bundle: one JSON line per
 * record, decrypted where it can still be read, then a manifest line with the checkpoint that covers them, each
 * record's audit path to it, and an Ed25519 signature. Lines are written as they are read, so a case of any size is
 * exported in bounded memory except for the inclusion proofs (a hash per record of the tenant's chain). Audited
 * before the first line is written; `onProgress` hears the total first (0 of N), then after every page.
 */
export async function exportCase(
  ctx: ArchiveContext,
  signer: SigningKey,
  tenantId: string,
  scope: ExportCase,
  actor: Actor,
  write: (line: string) => void | Promise<void>,
  onProgress?: (done: number, total: number) => void,
): Promise<BundleManifest> {
  if (!scope.conversationId && !scope.customerId) {
    throw new Problem('request/invalid', 'name a conversation or a customer')
  }
  if (scope.from && scope.to && scope.from > scope.to) throw new Problem('archive/invalid-range')
  const keys = archiveKeysOf(ctx)
  const checkpoint = await checkpointArchiveNow(ctx.db, signer, tenantId)
  const treeSize = Number(checkpoint?.tree_size ?? 0)
  let select = ctx.db.selectFrom('archive_records').where('tenant_id', '=', tenantId).where('seq', '<=', treeSize)
  if (scope.conversationId) select = select.where('conversation_id', '=', scope.conversationId)
  if (scope.customerId) select = select.where('customer_id', '=', scope.customerId)
  if (scope.from) select = select.where('occurred_at', '>=', scope.from)
  if (scope.to) select = select.where('occurred_at', '<', scope.to)
  const { total } = await select.select(({ fn }) => fn.countAll<number>().as('total')).executeTakeFirstOrThrow()
  // Audited before the first line leaves: a reader who stops halfway (a streamed download) has still been recorded.
  await recordAudit(ctx.db, {
    tenantId,
    actor,
    action: 'archive.export',
    target: scope.conversationId
      ? { kind: 'conversation', id: scope.conversationId }
      : { kind: 'customer', id: scope.customerId as string },
    outcome: 'success',
    details: {
      records: Number(total),
      from: scope.from?.toISOString() ?? null,
      to: scope.to?.toISOString() ?? null,
      treeSize,
    },
  })
  onProgress?.(0, Number(total))

  const digest = createHash('sha256')
  const listed: { seq: number; hash: string }[] = []
  for (let after = 0; ; ) {
    const rows = await select.selectAll().where('seq', '>', after).orderBy('seq').limit(PAGE).execute()
    if (rows.length === 0) break
    const opened = await withRedactions(ctx, keys, tenantId, await openRecords(keys, tenantId, rows), 'withheld')
    for (const { row, status, content } of opened) {
      const hash = Buffer.from(row.hash ?? []).toString('hex')
      const line: BundleLine = {
        ...chainedFields(row),
        prevHash: Buffer.from(row.prev_hash ?? []).toString('hex'),
        hash,
        status,
        content,
      }
      const text = `${JSON.stringify(line)}\n`
      digest.update(text, 'utf8')
      await write(text)
      listed.push({ seq: Number(row.seq), hash })
    }
    after = Number(rows.at(-1)?.seq)
    onProgress?.(listed.length, Number(total))
  }

  const proofs = inclusionProofs(
    await chainLeaves(ctx, tenantId, treeSize),
    listed.map((r) => r.seq - 1),
  )
  const publicKeys = await verificationKeys(ctx.db, 'archive-checkpoint', { tenantId })
  const manifest = signManifest(
    {
      type: BUNDLE_TYPE,
      tenantId,
      case: {
        conversationId: scope.conversationId ?? null,
        customerId: scope.customerId ?? null,
        from: scope.from?.toISOString() ?? null,
        to: scope.to?.toISOString() ?? null,
      },
      exportedAt: new Date().toISOString(),
      exportedBy: `${actor.kind}:${actor.id ?? ''}`,
      records: listed.length,
      linesSha256: digest.digest('hex'),
      checkpoint: {
        treeSize,
        rootHash: Buffer.from(checkpoint?.root_hash ?? []).toString('hex'),
        signedAt: checkpoint ? new Date(checkpoint.signed_at).toISOString() : new Date(0).toISOString(),
        keyId: checkpoint?.key_id ?? signer.id,
        signature: Buffer.from(checkpoint?.signature ?? []).toString('base64'),
      },
      inclusion: listed.map((r) => ({
        seq: r.seq,
        hash: r.hash,
        path: (proofs.get(r.seq - 1) ?? []).map((p) => p.toString('hex')),
      })),
      publicKeys: Object.fromEntries(
        [...publicKeys].map(([id, key]) => [id, key.export({ format: 'der', type: 'spki' }).toString('base64')]),
      ),
      keyId: signer.id,
    },
    signer,
  )
  await write(`${JSON.stringify({ manifest })}\n`)
  return manifest
}

/** The leaf hashes of a tenant's chain up to a size, read in pages. */
async function chainLeaves(ctx: ArchiveContext, tenantId: string, treeSize: number): Promise<Buffer[]> {
  const leaves: Buffer[] = []
  while (leaves.length < treeSize) {
    const rows = await ctx.db
      .selectFrom('archive_records')
      .select('hash')
      .where('tenant_id', '=', tenantId)
      .where('seq', '>', leaves.length)
      .where('seq', '<=', treeSize)
      .orderBy('seq')
      .limit(10_000)
      .execute()
    if (rows.length === 0) break
    for (const row of rows) leaves.push(leafHash(row.hash ?? Buffer.alloc(0)))
  }
  return leaves
}
