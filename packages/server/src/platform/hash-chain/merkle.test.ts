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
