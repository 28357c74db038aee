import { createHash } from 'node:crypto'

const HASH_BYTES = 32

/** RFC 6962 §2.1 leaf hash: SHA-256(0x00 || data). */
export function leafHash(data: Uint8Array): Buffer {
  return createHash('sha256').update(Buffer.of(0)).update(data).digest()
}

/** RFC 6962 §2.1 interior node hash: SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(Buffer.of(1)).update(left).update(right).digest()
}

/**
 * The right edge of an RFC 6962 Merkle tree: one perfect subtree root per 1-bit of the tree size, largest first. It
 * takes a leaf at a time and gives the tree head (MTH) at any size without keeping the leaves, so a chain of a
 * million records is checkpointed and verified in constant memory.
 */
export class MerkleFrontier {
  #size: number
  readonly #nodes: Buffer[]

  constructor(size = 0, nodes: Buffer[] = []) {
    this.#size = size
    this.#nodes = nodes
  }

  static deserialize(size: number, bytes: Uint8Array): MerkleFrontier {
    const nodes: Buffer[] = []
    for (let offset = 0; offset < bytes.length; offset += HASH_BYTES) {
      nodes.push(Buffer.from(bytes.subarray(offset, offset + HASH_BYTES)))
    }
    return new MerkleFrontier(size, nodes)
  }

  get size(): number {
    return this.#size
  }

  serialize(): Buffer {
    return Buffer.concat(this.#nodes)
  }

  /** Adds the next leaf, given as its leaf hash. */
  append(leaf: Buffer): void {
    let node = leaf
    // Each trailing 1-bit of the size is a subtree of the new leaf's size: merge until the sizes differ.
    for (let size = this.#size; size % 2 === 1; size = Math.floor(size / 2)) {
      node = nodeHash(this.#nodes.pop() as Buffer, node)
    }
    this.#nodes.push(node)
    this.#size++
  }

  /** The Merkle tree head of the leaves appended so far (the hash of the empty string for none). */
  root(): Buffer {
    if (this.#nodes.length === 0) return createHash('sha256').digest()
    let root = this.#nodes[this.#nodes.length - 1] as Buffer
    for (let i = this.#nodes.length - 2; i >= 0; i--) root = nodeHash(this.#nodes[i] as Buffer, root)
    return root
  }
}

/**
 * RFC 6962 §2.1.1 audit paths for some leaves of a tree of `leaves.length` leaves (given as leaf hashes). The tree is
 * built level by level (a node without a sibling moves up unchanged, which gives the RFC's largest-power-of-two
 * split), so this holds 2n hashes in memory: fine for millions of leaves, not for billions.
 */
export function inclusionProofs(leaves: Buffer[], indices: number[]): Map<number, Buffer[]> {
  const proofs = new Map<number, Buffer[]>(indices.map((i) => [i, []]))
  const positions = new Map<number, number>(indices.map((i) => [i, i]))
  let level = leaves
  while (level.length > 1) {
    for (const [leaf, position] of positions) {
      const sibling = position ^ 1
      if (sibling < level.length) proofs.get(leaf)?.push(level[sibling] as Buffer)
      positions.set(leaf, position >> 1)
    }
    const next: Buffer[] = []
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? nodeHash(level[i] as Buffer, level[i + 1] as Buffer) : (level[i] as Buffer))
    }
    level = next
  }
  return proofs
}

/** RFC 9162 §2.1.3.2: whether an audit path proves a leaf at an index is in the tree with this size and root. */
export function verifyInclusion(
  leaf: Buffer,
  index: number,
  treeSize: number,
  path: Buffer[],
  root: Uint8Array,
): boolean {
  if (index >= treeSize) return false
  let fn = index
  let sn = treeSize - 1
  let r = leaf
  for (const p of path) {
    if (sn === 0) return false
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r)
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2)
          sn = Math.floor(sn / 2)
        }
      }
    } else {
      r = nodeHash(r, p)
    }
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  return sn === 0 && r.equals(root)
}
