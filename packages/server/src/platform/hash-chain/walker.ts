import type { KeyObject } from 'node:crypto'
import { type ChainKind, checkCheckpoint } from './checkpoint.ts'
import { GENESIS_HASH } from './linker.ts'
import { leafHash, MerkleFrontier } from './merkle.ts'

/** The first thing in a chain that does not hold, naming the record (by sequence number and row id) or checkpoint. */
export interface ChainFailure {
  seq: number
  id: number | string | null
  reason: string
}

export interface StoredCheckpoint {
  tree_size: number | string
  root_hash: Uint8Array
  signed_at: Date | string
  key_id: string
  signature: Uint8Array
  /** Read from the witness outside the database, not from the chain's own table. */
  witnessed?: boolean
}

/**
 * Walks a chain from its first record, in sequence order, in constant memory: every sequence number present once and
 * in order, every record linked to the one before and hashing to what it says, every signed checkpoint matching the
 * Merkle tree head of the records it covers. The caller feeds records page by page and stops at the first failure.
 */
export class ChainWalker {
  readonly #kind: ChainKind
  readonly #tenantId: string
  readonly #checkpoints: StoredCheckpoint[]
  readonly #keys: Map<string, KeyObject>
  readonly #frontier = new MerkleFrontier()
  #previous: Buffer = GENESIS_HASH
  #expected = 1
  #nextCheckpoint = 0

  constructor(kind: ChainKind, tenantId: string, checkpoints: StoredCheckpoint[], keys: Map<string, KeyObject>) {
    this.#kind = kind
    this.#tenantId = tenantId
    this.#checkpoints = checkpoints
    this.#keys = keys
  }

  /** The next sequence number the walk expects (1 + records walked). */
  get expected(): number {
    return this.#expected
  }

  /** Checks one record; `recompute` gives its hash from the previous record's. */
  step(
    record: { seq: number | string | null; id: number | string; prev_hash: Uint8Array | null; hash: Uint8Array | null },
    recompute: (previous: Buffer) => Buffer,
  ): ChainFailure | undefined {
    const seq = Number(record.seq)
    const id = record.id
    if (seq !== this.#expected) return { seq: this.#expected, id: null, reason: 'record missing (sequence gap)' }
    if (!record.prev_hash || !this.#previous.equals(record.prev_hash)) {
      return { seq, id, reason: 'not linked to the previous record (moved, or one before it changed)' }
    }
    const hash = recompute(this.#previous)
    if (!record.hash || !hash.equals(record.hash)) return { seq, id, reason: 'record altered' }
    this.#frontier.append(leafHash(hash))
    this.#previous = hash
    for (; Number(this.#checkpoints[this.#nextCheckpoint]?.tree_size) === seq; this.#nextCheckpoint++) {
      const checkpoint = this.#checkpoints[this.#nextCheckpoint] as StoredCheckpoint
      const failure = checkCheckpoint(this.#kind, this.#tenantId, checkpoint, this.#frontier, this.#keys)
      if (failure) return { seq, id, reason: failure }
    }
    this.#expected++
    return undefined
  }

  /** How many records walked so far come after the newest checkpoint, so no signature covers them. */
  get unsealed(): number {
    const sealed = Number(this.#checkpoints[this.#nextCheckpoint - 1]?.tree_size ?? 0)
    return this.#expected - 1 - sealed
  }

  /** After the last record: a checkpoint beyond the end means records were cut off. */
  end(): ChainFailure | undefined {
    const beyond = this.#checkpoints[this.#nextCheckpoint]
    if (!beyond) return undefined
    const last = this.#expected - 1
    return {
      seq: this.#expected,
      id: null,
      reason: `records missing: checkpoint covers ${beyond.tree_size}, chain ends at ${last}`,
    }
  }
}

/**
 * What a verifier trusts, from outside the database it verifies: the checkpoint public keys (exported when they were
 * made) and, when there is one, the witness file the checkpoints were also written to.
 */
export interface ChainTrust {
  keys: Map<string, KeyObject>
  witnessFile?: string | undefined
}

/** What a verification found: how far the chain holds, and the first failure if any. */
export interface ChainVerification {
  tenantId: string
  ok: boolean
  records: number
  checkpoints: number
  /** Checkpoints read from the witness and checked against the records (0 without a witness). */
  witnessed: number
  /** Linked records after the newest checkpoint: no signature covers them yet, so they are not yet evidence. */
  unsealed: number
  /** Records written but not yet linked (they are linked within a second or so). */
  pending: number
  failure?: { seq: number; id: number | null; reason: string }
}

type WalkedRecord = Parameters<ChainWalker['step']>[0]

/**
 * Walks a whole chain page by page (`pages` gives records in sequence order from the first, a page at a time), with an
 * optional further check per record, and reports progress after each page; the next page is read while one is
 * checked, so the database's work and the hashing overlap, and no more than two pages are held. Checkpoints from the
 * witness are checked like the stored ones: a history rewritten and re-signed in the database still differs from the
 * tree heads the witness took before.
 */
export async function walkChain<R extends WalkedRecord>(options: {
  kind: ChainKind
  tenantId: string
  checkpoints: StoredCheckpoint[]
  witnessed?: StoredCheckpoint[] | undefined
  keys: Map<string, KeyObject>
  pending: number
  pages: AsyncIterable<R[]>
  recompute: (record: R, previous: Buffer) => Buffer
  check?: (record: R) => ChainFailure | undefined
  total: number
  onProgress?: ((done: number, total: number) => void) | undefined
}): Promise<ChainVerification> {
  const witnessed = options.witnessed ?? []
  const checkpoints = [...options.checkpoints, ...witnessed].sort((a, b) => Number(a.tree_size) - Number(b.tree_size))
  const walker = new ChainWalker(options.kind, options.tenantId, checkpoints, options.keys)
  const result = (failure: ChainFailure | undefined): ChainVerification => ({
    tenantId: options.tenantId,
    ok: failure === undefined,
    records: walker.expected - 1,
    checkpoints: options.checkpoints.length,
    witnessed: witnessed.length,
    unsealed: walker.unsealed,
    pending: options.pending,
    ...(failure ? { failure: { ...failure, id: failure.id === null ? null : Number(failure.id) } } : {}),
  })
  const pages = options.pages[Symbol.asyncIterator]()
  for (let next = pages.next(); ; ) {
    const page = await next
    if (page.done) break
    next = pages.next()
    for (const record of page.value) {
      const failure = walker.step(record, (previous) => options.recompute(record, previous)) ?? options.check?.(record)
      if (failure) {
        await next
        await pages.return?.()
        return result(failure)
      }
    }
    options.onProgress?.(walker.expected - 1, options.total)
  }
  return result(walker.end())
}
