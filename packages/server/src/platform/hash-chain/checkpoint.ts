import { type KeyObject, verify } from 'node:crypto'
import canonicalize from 'canonicalize'
import type { SigningKey } from '../keyring/signing-keys.ts'
import type { MerkleFrontier } from './merkle.ts'

/** What a chain's checkpoints are of: the type in the signed statement, so an audit head never passes for an archive one. */
export type ChainKind = 'audit' | 'archive'

/** A signed tree head as stored and as exported. */
export interface SignedCheckpoint {
  tenant_id: string
  tree_size: number
  root_hash: Buffer
  signed_at: Date
  key_id: string
  signature: Buffer
}

/** What a checkpoint's signature covers: RFC 8785 canonical JSON naming the chain, its size and its Merkle root. */
export function checkpointStatement(
  kind: ChainKind,
  checkpoint: { tenantId: string; treeSize: number; rootHash: Uint8Array; signedAt: Date; keyId: string },
): Buffer {
  return Buffer.from(
    canonicalize({
      type: `strongroom-${kind}-checkpoint/v1`,
      tenantId: checkpoint.tenantId,
      treeSize: checkpoint.treeSize,
      rootHash: Buffer.from(checkpoint.rootHash).toString('hex'),
      signedAt: checkpoint.signedAt.toISOString(),
      keyId: checkpoint.keyId,
    }) as string,
    'utf8',
  )
}

/** Signs the tree head of what the frontier holds (Ed25519). */
export function signCheckpoint(
  kind: ChainKind,
  signer: SigningKey,
  tenantId: string,
  frontier: MerkleFrontier,
): SignedCheckpoint {
  const rootHash = frontier.root()
  const signedAt = new Date()
  const treeSize = frontier.size
  const statement = checkpointStatement(kind, { tenantId, treeSize, rootHash, signedAt, keyId: signer.id })
  return {
    tenant_id: tenantId,
    tree_size: treeSize,
    root_hash: rootHash,
    signed_at: signedAt,
    key_id: signer.id,
    signature: signer.sign(statement),
  }
}

/** Why a stored checkpoint does not hold for the records walked so far, or undefined when it does. */
export function checkCheckpoint(
  kind: ChainKind,
  tenantId: string,
  checkpoint: {
    tree_size: number | string
    root_hash: Uint8Array
    signed_at: Date | string
    key_id: string
    signature: Uint8Array
    witnessed?: boolean
  },
  frontier: MerkleFrontier | undefined,
  keys: Map<string, KeyObject>,
): string | undefined {
  const name = `${checkpoint.witnessed ? 'witnessed ' : ''}checkpoint ${checkpoint.tree_size}`
  const key = keys.get(checkpoint.key_id)
  if (!key) return `${name} is signed by a key that is not trusted (${checkpoint.key_id})`
  const statement = checkpointStatement(kind, {
    tenantId,
    treeSize: Number(checkpoint.tree_size),
    rootHash: checkpoint.root_hash,
    signedAt: new Date(checkpoint.signed_at),
    keyId: checkpoint.key_id,
  })
  if (!verify(null, statement, key, Buffer.from(checkpoint.signature))) {
    return `${name} has a bad signature`
  }
  if (frontier && !frontier.root().equals(checkpoint.root_hash)) {
    return `records up to ${checkpoint.tree_size} do not match their ${checkpoint.witnessed ? 'witnessed' : 'signed'} checkpoint`
  }
  return undefined
}
