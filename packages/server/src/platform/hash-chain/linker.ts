import { hash } from 'node:crypto'
import type { SigningKey } from '../keyring/signing-keys.ts'
import { type ChainKind, type SignedCheckpoint, signCheckpoint } from './checkpoint.ts'
import { leafHash, MerkleFrontier } from './merkle.ts'

/** The first record of a chain links to 32 zero bytes. */
export const GENESIS_HASH = Buffer.alloc(32)

/**
 * A record's chain hash: SHA-256(previous record's hash || UTF-8 of its canonical text). The input is written into one
 * buffer and hashed in one call: verification does this for every record.
 */
export function chainHash(previous: Uint8Array, text: string): Buffer {
  const input = Buffer.allocUnsafe(previous.length + Buffer.byteLength(text, 'utf8'))
  input.set(previous)
  input.write(text, previous.length, 'utf8')
  return hash('sha256', input, 'buffer')
}

export interface CheckpointPolicy {
  /** A signed checkpoint at least every this many records… */
  everyRecords: number
  /** …and, when there are new records, at least this often. */
  everySeconds: number
}

/** A chain's head row: where the next record links, the Merkle frontier, and when the last checkpoint was signed. */
export interface ChainHead {
  last_seq: number | string
  last_hash: Uint8Array
  frontier: Uint8Array
  checkpoint_seq: number | string
  checkpoint_at: Date | string
}

/** A head row for a chain with no record yet. */
export function emptyChainHead(): ChainHead {
  return {
    last_seq: 0,
    last_hash: GENESIS_HASH,
    frontier: Buffer.alloc(0),
    checkpoint_seq: 0,
    checkpoint_at: new Date(),
  }
}

/**
 * Links records one after another onto a chain's head: each gets the next sequence number, the previous record's hash
 * and its own, and joins the Merkle tree; a signed checkpoint is made when the policy says one is due. Pure: the
 * caller reads the head (locked) and writes links, checkpoints and the new head in one transaction.
 */
export class ChainLinker {
  /** Each with the frontier at its size, where the next checkpoint's consistency proof starts. */
  readonly checkpoints: (SignedCheckpoint & { frontier: Buffer })[] = []
  readonly #kind: ChainKind
  readonly #tenantId: string
  readonly #signer: SigningKey
  readonly #policy: CheckpointPolicy
  readonly #frontier: MerkleFrontier
  #seq: number
  #previous: Buffer
  #checkpointSeq: number
  #checkpointAt: Date

  constructor(kind: ChainKind, tenantId: string, head: ChainHead, signer: SigningKey, policy: CheckpointPolicy) {
    this.#kind = kind
    this.#tenantId = tenantId
    this.#signer = signer
    this.#policy = policy
    this.#seq = Number(head.last_seq)
    this.#previous = Buffer.from(head.last_hash)
    this.#frontier = MerkleFrontier.deserialize(this.#seq, head.frontier)
    this.#checkpointSeq = Number(head.checkpoint_seq)
    this.#checkpointAt = new Date(head.checkpoint_at)
  }

  /** Links the next record, whose hash `hashOf` computes from the previous hash and its sequence number. */
  link(hashOf: (previous: Buffer, seq: number) => Buffer, last: boolean): { seq: number; prev: Buffer; hash: Buffer } {
    this.#seq += 1
    const prev = this.#previous
    const hash = hashOf(prev, this.#seq)
    this.#frontier.append(leafHash(hash))
    this.#previous = hash
    const waited = Date.now() - this.#checkpointAt.getTime() >= this.#policy.everySeconds * 1000
    if (this.#seq - this.#checkpointSeq >= this.#policy.everyRecords || (last && waited)) this.checkpoint()
    return { seq: this.#seq, prev, hash }
  }

  /** Signs the tree head now, when it covers records no checkpoint covers yet. */
  checkpoint(): void {
    if (this.#seq === this.#checkpointSeq) return
    const checkpoint = signCheckpoint(this.#kind, this.#signer, this.#tenantId, this.#frontier)
    this.checkpoints.push({ ...checkpoint, frontier: this.#frontier.serialize() })
    this.#checkpointSeq = this.#seq
    this.#checkpointAt = checkpoint.signed_at
  }

  /** The head row to write back. */
  head(): ChainHead {
    return {
      last_seq: this.#seq,
      last_hash: this.#previous,
      frontier: this.#frontier.serialize(),
      checkpoint_seq: this.#checkpointSeq,
      checkpoint_at: this.#checkpointAt,
    }
  }
}
