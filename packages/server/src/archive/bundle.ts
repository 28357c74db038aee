import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto'
import canonicalize from 'canonicalize'
import { type ChainKind, checkCheckpoint } from '../platform/hash-chain/checkpoint.ts'
import { leafHash, verifyInclusion } from '../platform/hash-chain/merkle.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import type { ContentStatus } from './open-records.ts'
import { archiveRecordHash, type ChainedFields } from './record-hash.ts'
import { type ArchiveContent, contentDigest } from './sealing.ts'

const KIND: ChainKind = 'archive'
export const BUNDLE_TYPE = 'strongroom-archive-export/v1'

/** One line of an export: the record's chained fields, its links, and its content when it can still be read. */
export type BundleLine = ChainedFields & {
  prevHash: string
  hash: string
  status: ContentStatus
  content: ArchiveContent | null
}

export interface BundleManifest {
  type: typeof BUNDLE_TYPE
  tenantId: string
  case: { conversationId: string | null; customerId: string | null; from: string | null; to: string | null }
  exportedAt: string
  exportedBy: string
  records: number
  /** SHA-256 of the record lines, each with its newline, in order. */
  linesSha256: string
  /** The signed tree head that covers every record of the export. */
  checkpoint: { treeSize: number; rootHash: string; signedAt: string; keyId: string; signature: string }
  /** Per record: its chain hash and its RFC 6962 audit path to the checkpoint's root. */
  inclusion: { seq: number; hash: string; path: string[] }[]
  /** The public keys (SPKI DER, base64) of the key ids named; check them against the bank's published keys. */
  publicKeys: Record<string, string>
  keyId: string
  /** Ed25519 over the RFC 8785 canonical JSON of the manifest without this field. */
  signature?: string
}

export function signManifest(manifest: BundleManifest, signer: SigningKey): BundleManifest {
  const { signature: _, ...unsigned } = manifest
  const statement = Buffer.from(canonicalize(unsigned) as string, 'utf8')
  return { ...unsigned, signature: signer.sign(statement).toString('base64') }
}

export interface BundleVerification {
  ok: boolean
  records: number
  /** The first thing that fails: a line number (1-based) or the manifest. */
  failure?: { line: number | 'manifest'; reason: string }
}

/**
 * Verifies an exported bundle offline, with no database and no archive key: the manifest's signature, the signed
 * checkpoint, every line hashing to its chain hash from its fields and previous hash, every readable content matching
 * the digest the chain holds, and every record included in the checkpoint's Merkle tree. `trustedKeys` (key id →
 * public key, from the bank's published keys) should be given; without it the keys the bundle carries are used,
 * which proves integrity but not origin.
 */
export function verifyBundle(bundle: string, trustedKeys?: Map<string, KeyObject>): BundleVerification {
  const lines = bundle.split('\n')
  if (lines.at(-1) === '') lines.pop()
  const fail = (line: number | 'manifest', reason: string, records = 0): BundleVerification => ({
    ok: false,
    records,
    failure: { line, reason },
  })
  let manifest: BundleManifest
  try {
    manifest = (JSON.parse(lines.pop() ?? '') as { manifest: BundleManifest }).manifest
  } catch {
    return fail('manifest', 'the last line is not a manifest')
  }
  if (manifest?.type !== BUNDLE_TYPE) return fail('manifest', 'the last line is not a manifest')
  const keys =
    trustedKeys ??
    new Map(
      Object.entries(manifest.publicKeys).map(([id, der]) => [
        id,
        createPublicKey({ key: Buffer.from(der, 'base64'), format: 'der', type: 'spki' }),
      ]),
    )
  const { signature, ...unsigned } = manifest
  const manifestKey = keys.get(manifest.keyId)
  if (
    !signature ||
    !manifestKey ||
    !verify(null, Buffer.from(canonicalize(unsigned) as string, 'utf8'), manifestKey, Buffer.from(signature, 'base64'))
  ) {
    return fail('manifest', 'the manifest signature does not verify')
  }
  const checkpoint = manifest.checkpoint
  const checkpointFailure = checkCheckpoint(
    KIND,
    manifest.tenantId,
    {
      tree_size: checkpoint.treeSize,
      root_hash: Buffer.from(checkpoint.rootHash, 'hex'),
      signed_at: checkpoint.signedAt,
      key_id: checkpoint.keyId,
      signature: Buffer.from(checkpoint.signature, 'base64'),
    },
    undefined,
    keys,
  )
  if (checkpointFailure) return fail('manifest', checkpointFailure)
  if (lines.length !== manifest.records || manifest.inclusion.length !== manifest.records) {
    return fail('manifest', `the manifest lists ${manifest.records} records, the bundle has ${lines.length}`)
  }
  const digest = createHash('sha256')
  for (const line of lines) digest.update(`${line}\n`, 'utf8')
  const linesAltered = digest.digest('hex') !== manifest.linesSha256

  const root = Buffer.from(checkpoint.rootHash, 'hex')
  for (const [i, text] of lines.entries()) {
    const number = i + 1
    let line: BundleLine
    try {
      line = JSON.parse(text) as BundleLine
    } catch {
      return fail(number, 'not JSON', i)
    }
    const { prevHash, hash, status: _status, content, ...fields } = line
    if (fields.tenantId !== manifest.tenantId) return fail(number, 'record of another tenant', i)
    if (!archiveRecordHash(Buffer.from(prevHash, 'hex'), fields).equals(Buffer.from(hash, 'hex'))) {
      return fail(number, `record ${fields.seq} altered (its fields do not hash to its chain hash)`, i)
    }
    if (content !== null && !contentDigest(content).equals(Buffer.from(fields.contentDigest ?? '', 'hex'))) {
      return fail(number, `record ${fields.seq} content altered`, i)
    }
    const proof = manifest.inclusion[i]
    if (proof?.seq !== fields.seq || proof.hash !== hash) return fail(number, 'not the record the manifest lists', i)
    const path = proof.path.map((p) => Buffer.from(p, 'hex'))
    if (!verifyInclusion(leafHash(Buffer.from(hash, 'hex')), fields.seq - 1, checkpoint.treeSize, path, root)) {
      return fail(number, `record ${fields.seq} is not in the signed checkpoint`, i)
    }
  }
  if (linesAltered) return fail('manifest', 'the record lines do not match the manifest digest', lines.length)
  return { ok: true, records: lines.length }
}
