import { createHash, hash } from 'node:crypto'

const HASH_BYTES = 32
const LEAF = Buffer.of(0)
const NODE = Buffer.of(1)

// One-shot crypto.hash over the concatenation: a chain verification takes two of these per record, and on inputs this
// short a createHash object and its update calls cost more than the hashing.

/** RFC 6962 §2.1 leaf hash: SHA-256(0x00 || data). */
export function leafHash(data: Uint8Array): Buffer {
  return hash('sha256', Buffer.concat([LEAF, data]), 'buffer')
}

/** RFC 6962 §2.1 interior node hash: SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return hash('sha256', Buffer.concat([NODE, left, right]), 'buffer')
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

  /** The perfect subtree roots, largest first (what a consistency proof from this size is made of). */
  subtrees(): Buffer[] {
    return [...this.#nodes]
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

/** The largest power of two smaller than n (n > 1): RFC 6962's split point. */
function splitPoint(n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

/**
 * RFC 6962 §2.1.2 consistency proof that the tree of `oldSize` leaves is a prefix of the tree of `oldSize +
 * newLeaves.length` leaves, made from what a chain keeps: the frontier at the old size (its perfect subtree roots,
 * largest first, as `MerkleFrontier` holds them) and the leaf hashes added since. Every node the proof needs inside
 * the old tree is one of those subtree roots (the recursion only ever takes whole left subtrees of the old size's
 * binary decomposition), so no older leaf is read.
 */
export function consistencyProof(oldSize: number, oldFrontier: Buffer[], newLeaves: Buffer[]): Buffer[] {
  const size = oldSize + newLeaves.length
  if (oldSize <= 0 || oldSize > size) throw new RangeError('a consistency proof needs 0 < old size <= new size')
  // The old tree's perfect subtrees by where they start: sizes are the 1-bits of the old size, largest first.
  const oldSubtrees = new Map<number, { size: number; hash: Buffer }>()
  let start = 0
  for (let bit = 2 ** Math.floor(Math.log2(oldSize)), i = 0; bit >= 1; bit /= 2) {
    if ((oldSize & bit) === 0) continue
    oldSubtrees.set(start, { size: bit, hash: oldFrontier[i++] as Buffer })
    start += bit
  }
  const hashOf = (from: number, to: number): Buffer => {
    if (from >= oldSize) return rangeHash(newLeaves, from - oldSize, to - oldSize)
    const subtree = oldSubtrees.get(from)
    if (subtree && subtree.size === to - from) return subtree.hash
    const k = splitPoint(to - from)
    return nodeHash(hashOf(from, from + k), hashOf(from + k, to))
  }
  const proof: Buffer[] = []
  // SUBPROOF(m, D[from:to], b), iteratively: each step adds one hash and descends into one half.
  const subproof = (m: number, from: number, to: number, whole: boolean): void => {
    if (m === to - from) {
      if (!whole) proof.push(hashOf(from, to))
      return
    }
    const k = splitPoint(to - from)
    if (m <= k) {
      subproof(m, from, from + k, whole)
      proof.push(hashOf(from + k, to))
    } else {
      subproof(m - k, from + k, to, false)
      proof.push(hashOf(from, from + k))
    }
  }
  if (oldSize < size) subproof(oldSize, 0, size, true)
  return proof
}

/** The Merkle tree hash of leaves[from:to] (to > from). */
function rangeHash(leaves: Buffer[], from: number, to: number): Buffer {
  if (to - from === 1) return leaves[from] as Buffer
  const k = splitPoint(to - from)
  return nodeHash(rangeHash(leaves, from, from + k), rangeHash(leaves, from + k, to))
}

/**
 * RFC 9162 §2.1.4.2: whether a consistency proof shows that the tree with `oldRoot` at `oldSize` is a prefix of the
 * tree with `newRoot` at `newSize`, that is, that nothing before was changed or removed.
 */
export function verifyConsistency(
  oldSize: number,
  newSize: number,
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
  proof: Buffer[],
): boolean {
  if (oldSize < 1 || oldSize > newSize) return false
  if (oldSize === newSize) return proof.length === 0 && Buffer.from(oldRoot).equals(newRoot)
  let path = proof
  if ((oldSize & (oldSize - 1)) === 0) path = [Buffer.from(oldRoot), ...proof]
  if (path.length === 0) return false
  let fn = oldSize - 1
  let sn = newSize - 1
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  let fr = path[0] as Buffer
  let sr = path[0] as Buffer
  for (const c of path.slice(1)) {
    if (sn === 0) return false
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr)
      sr = nodeHash(c, sr)
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2)
          sn = Math.floor(sn / 2)
        }
      }
    } else {
      sr = nodeHash(sr, c)
    }
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  return sn === 0 && fr.equals(oldRoot) && sr.equals(newRoot)
}
