import assert from 'node:assert/strict'
import { test } from 'node:test'
import { leafHash, MerkleFrontier } from './merkle.ts'

// The Merkle tree heads of the Certificate Transparency reference tests (RFC 6962 hashing) for the first 1..8 of
// these leaves.
const leaves = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f']
const roots = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
]

test('tree heads match the RFC 6962 reference values at every size from 1 to 8', () => {
  const frontier = new MerkleFrontier()
  assert.equal(frontier.root().toString('hex'), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  leaves.forEach((leaf, i) => {
    frontier.append(leafHash(Buffer.from(leaf, 'hex')))
    assert.equal(frontier.root().toString('hex'), roots[i], `size ${i + 1}`)
  })
})

test('a frontier saved and restored goes on to the same heads', () => {
  const whole = new MerkleFrontier()
  const first = new MerkleFrontier()
  for (const leaf of leaves.slice(0, 5)) {
    whole.append(leafHash(Buffer.from(leaf, 'hex')))
    first.append(leafHash(Buffer.from(leaf, 'hex')))
  }
  const restored = MerkleFrontier.deserialize(first.size, first.serialize())
  for (const leaf of leaves.slice(5)) {
    whole.append(leafHash(Buffer.from(leaf, 'hex')))
    restored.append(leafHash(Buffer.from(leaf, 'hex')))
  }
  assert.equal(restored.root().toString('hex'), roots[7])
  assert.equal(restored.size, 8)
})

test('audit paths prove every leaf of trees of 1 to 20 leaves, and fail for another leaf, index or root', async () => {
  const { inclusionProofs, verifyInclusion } = await import('./merkle.ts')
  for (let size = 1; size <= 20; size++) {
    const leaves = Array.from({ length: size }, (_, i) => leafHash(Buffer.from([i])))
    const frontier = new MerkleFrontier()
    for (const leaf of leaves) frontier.append(leaf)
    const root = frontier.root()
    const indices = leaves.map((_, i) => i)
    const proofs = inclusionProofs(leaves, indices)
    for (const i of indices) {
      const path = proofs.get(i) ?? []
      assert.ok(verifyInclusion(leaves[i] as Buffer, i, size, path, root), `leaf ${i} of ${size}`)
      assert.ok(!verifyInclusion(leafHash(Buffer.from('other')), i, size, path, root))
      if (size > 1) assert.ok(!verifyInclusion(leaves[i] as Buffer, (i + 1) % size, size, path, root))
      assert.ok(!verifyInclusion(leaves[i] as Buffer, i, size, path, leafHash(Buffer.from('root'))))
    }
  }
})

// Consistency proofs of the Certificate Transparency reference tests over the same leaves (RFC 6962 §2.1.2).
const consistencyVectors = [
  {
    from: 2,
    to: 8,
    proof: [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    from: 6,
    to: 8,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  {
    from: 2,
    to: 5,
    proof: [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
]

/** A chain's view at a size: the frontier there, as the chainer keeps it. */
function frontierOf(leafHashes: Buffer[]): MerkleFrontier {
  const frontier = new MerkleFrontier()
  for (const leaf of leafHashes) frontier.append(leaf)
  return frontier
}

test('consistency proofs made from a frontier and the new leaves are the RFC 6962 reference proofs', async () => {
  const { consistencyProof, verifyConsistency } = await import('./merkle.ts')
  const hashes = leaves.map((leaf) => leafHash(Buffer.from(leaf, 'hex')))
  for (const { from, to, proof } of consistencyVectors) {
    const made = consistencyProof(from, frontierOf(hashes.slice(0, from)).subtrees(), hashes.slice(from, to))
    assert.deepEqual(
      made.map((node) => node.toString('hex')),
      proof,
      `${from} → ${to}`,
    )
    const [oldRoot, newRoot] = [roots[from - 1], roots[to - 1]].map((r) => Buffer.from(r as string, 'hex'))
    assert.ok(verifyConsistency(from, to, oldRoot as Buffer, newRoot as Buffer, made))
  }
})

test('every consistency proof between trees of up to 40 leaves verifies; a changed leaf, root or node fails', async () => {
  const { consistencyProof, verifyConsistency } = await import('./merkle.ts')
  const hashes = Array.from({ length: 40 }, (_, i) => leafHash(Buffer.from([i, 7])))
  for (let to = 1; to <= hashes.length; to++) {
    const newRoot = frontierOf(hashes.slice(0, to)).root()
    for (let from = 1; from <= to; from++) {
      const old = frontierOf(hashes.slice(0, from))
      const proof = consistencyProof(from, old.subtrees(), hashes.slice(from, to))
      assert.ok(verifyConsistency(from, to, old.root(), newRoot, proof), `${from} → ${to}`)
      if (from === to) continue
      // History rewritten before the old size: the new tree is not an extension of the old one.
      const rewritten = [...hashes.slice(0, to)]
      rewritten[from - 1] = leafHash(Buffer.from('rewritten'))
      assert.ok(!verifyConsistency(from, to, old.root(), frontierOf(rewritten).root(), proof))
      assert.ok(!verifyConsistency(from, to, leafHash(Buffer.from('x')), newRoot, proof))
      if (proof.length > 0) {
        const tampered = proof.map((node, i) => (i === proof.length - 1 ? leafHash(node) : node))
        assert.ok(!verifyConsistency(from, to, old.root(), newRoot, tampered))
      }
    }
  }
})
