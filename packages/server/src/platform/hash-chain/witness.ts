import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import { type ChainKind, checkCheckpoint } from './checkpoint.ts'
import { consistencyProof, leafHash, MerkleFrontier, verifyConsistency } from './merkle.ts'
import { type TrustedKey, trustedKeysFor } from './trusted-keys.ts'
import type { StoredCheckpoint } from './walker.ts'

/**
 * One signed tree head as a witness keeps it: the fields of the signed statement and the signature, so that anyone
 * holding the exported public keys checks it without the database.
 */
export interface WitnessEntry {
  type: `strongroom-${ChainKind}-checkpoint/v1`
  tenantId: string
  treeSize: number
  rootHash: string
  signedAt: string
  keyId: string
  signature: string
  /**
   * RFC 6962 consistency proof from the chain's checkpoint before this one (not signed: a proof stands by itself), so
   * that the witness, holding nothing but these lines, sees that each tree head extends the one before.
   */
  consistency?: { fromTreeSize: number; fromRootHash: string; proof: string[] }
}

/** A checkpoint row as the chains store it. */
export interface CheckpointRow {
  tenant_id: string
  tree_size: number | string
  root_hash: Uint8Array
  signed_at: Date | string
  key_id: string
  signature: Uint8Array
}

export function witnessEntry(
  kind: ChainKind,
  row: CheckpointRow,
  consistency?: WitnessEntry['consistency'],
): WitnessEntry {
  return {
    type: `strongroom-${kind}-checkpoint/v1`,
    tenantId: row.tenant_id,
    treeSize: Number(row.tree_size),
    rootHash: Buffer.from(row.root_hash).toString('hex'),
    signedAt: new Date(row.signed_at).toISOString(),
    keyId: row.key_id,
    signature: Buffer.from(row.signature).toString('base64url'),
    ...(consistency ? { consistency } : {}),
  }
}

/**
 * Where signed checkpoints are also written, outside PostgreSQL: an append-only file (the operator points it at WORM
 * storage) and/or a webhook. Delivery is at least once: an entry may appear twice.
 */
export interface Witness {
  /** False while backing off after a failed delivery. */
  due(): boolean
  record(entries: WitnessEntry[]): Promise<void>
}

const WEBHOOK_TIMEOUT_MS = 10_000
const MAX_BACKOFF_MS = 60_000

/** The witness the configuration names (a file, a webhook, or both), or undefined when there is none. */
export function openWitness(config: {
  witnessFile?: string | undefined
  witnessUrl?: string | undefined
}): Witness | undefined {
  const { witnessFile, witnessUrl } = config
  if (!witnessFile && !witnessUrl) return undefined
  let failures = 0
  let retryAt = 0
  return {
    due: () => Date.now() >= retryAt,
    async record(entries) {
      if (entries.length === 0) return
      try {
        if (witnessFile) appendLines(witnessFile, entries)
        if (witnessUrl) await postEntries(witnessUrl, entries)
        failures = 0
      } catch (error) {
        failures++
        retryAt = Date.now() + Math.min(250 * 2 ** failures, MAX_BACKOFF_MS)
        throw error
      }
    },
  }
}

const WITNESS_PAGE = 1000

/**
 * Writes a chain kind's signed checkpoints the witness has not taken yet to it, oldest first, and marks them taken, in
 * one transaction (rows locked, so two nodes do not send the same ones). The checkpoint tables of the audit log and
 * the archive have one shape, made by this folder's linker. Returns how many were sent.
 */
export async function witnessCheckpoints(db: Kysely<Database>, kind: ChainKind, witness: Witness): Promise<number> {
  const table = kind === 'audit' ? 'audit_checkpoints' : 'archive_checkpoints'
  return db.transaction().execute(async (trx) => {
    const rows = await trx
      .selectFrom(table)
      .selectAll()
      .where('witnessed_at', 'is', null)
      .orderBy('tenant_id')
      .orderBy('tree_size')
      .limit(WITNESS_PAGE)
      .forUpdate()
      .skipLocked()
      .execute()
    if (rows.length === 0) return 0
    const entries: WitnessEntry[] = []
    for (const row of rows) entries.push(witnessEntry(kind, row, await consistencyFromPrevious(trx, kind, row)))
    await witness.record(entries)
    await trx
      .updateTable(table)
      .set({ witnessed_at: new Date() })
      .where((eb) =>
        eb.or(rows.map((row) => eb.and([eb('tenant_id', '=', row.tenant_id), eb('tree_size', '=', row.tree_size)]))),
      )
      .execute()
    return rows.length
  })
}

/**
 * The proof that a checkpoint extends the chain's one before: from the frontier stored with that one and the hashes of
 * the records between the two. Undefined for a chain's first checkpoint, or one after a checkpoint from before
 * frontiers were stored.
 */
async function consistencyFromPrevious(
  db: Kysely<Database>,
  kind: ChainKind,
  row: CheckpointRow,
): Promise<WitnessEntry['consistency']> {
  const checkpoints = kind === 'audit' ? 'audit_checkpoints' : 'archive_checkpoints'
  const previous = await db
    .selectFrom(checkpoints)
    .select(['tree_size', 'root_hash', 'frontier'])
    .where('tenant_id', '=', row.tenant_id)
    .where('tree_size', '<', String(row.tree_size))
    .orderBy('tree_size', 'desc')
    .executeTakeFirst()
  if (!previous?.frontier) return undefined
  const from = Number(previous.tree_size)
  const records = kind === 'audit' ? 'audit_events' : 'archive_records'
  const leaves = await db
    .selectFrom(records)
    .select('hash')
    .where('tenant_id', '=', row.tenant_id)
    .where('seq', '>', String(from))
    .where('seq', '<=', String(row.tree_size))
    .orderBy('seq')
    .execute()
  if (leaves.length !== Number(row.tree_size) - from || leaves.some((leaf) => !leaf.hash)) return undefined
  const frontier = MerkleFrontier.deserialize(from, previous.frontier)
  const proof = consistencyProof(
    from,
    frontier.subtrees(),
    leaves.map((leaf) => leafHash(leaf.hash as Uint8Array)),
  )
  return {
    fromTreeSize: from,
    fromRootHash: Buffer.from(previous.root_hash).toString('hex'),
    proof: proof.map((node) => node.toString('hex')),
  }
}

/** Appends one JSON line per entry and waits for the disk: the file is only ever opened for appending. */
function appendLines(file: string, entries: WitnessEntry[]): void {
  const fd = openSync(file, 'a', 0o640)
  try {
    writeSync(fd, entries.map((entry) => `${JSON.stringify(entry)}\n`).join(''))
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

async function postEntries(url: string, entries: WitnessEntry[]): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ entries }),
    redirect: 'manual',
    signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
  })
  await response.body?.cancel()
  if (response.status < 200 || response.status > 299)
    throw new Error(`witness webhook answered HTTP ${response.status}`)
}

/** Why a witness file cannot be read; the CLI prints the message and exits. */
export class WitnessFileError extends Error {
  override name = 'WitnessFileError'
}

/** Every entry of a witness file, in file order, each checked for shape. */
function readEntries(file: string): WitnessEntry[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    throw new WitnessFileError(`the witness file ${file} cannot be read`)
  }
  const entries: WitnessEntry[] = []
  for (const [index, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue
    let entry: WitnessEntry
    try {
      entry = JSON.parse(line)
    } catch {
      throw new WitnessFileError(`the witness file ${file} has a malformed line ${index + 1}`)
    }
    if (!Number.isSafeInteger(entry.treeSize) || !/^[0-9a-f]{64}$/.test(entry.rootHash ?? '')) {
      throw new WitnessFileError(`the witness file ${file} has a malformed line ${index + 1}`)
    }
    entries.push(entry)
  }
  return entries
}

function storedForm(entry: WitnessEntry): StoredCheckpoint {
  return {
    tree_size: entry.treeSize,
    root_hash: Buffer.from(entry.rootHash, 'hex'),
    signed_at: entry.signedAt,
    key_id: entry.keyId,
    signature: Buffer.from(entry.signature, 'base64url'),
    witnessed: true,
  }
}

/** The checkpoints a witness file holds for one chain, in the stored form the walk checks (duplicates kept). */
export function readWitnessFile(file: string, kind: ChainKind, tenantId: string): StoredCheckpoint[] {
  return readEntries(file)
    .filter((entry) => entry.type === `strongroom-${kind}-checkpoint/v1` && entry.tenantId === tenantId)
    .map(storedForm)
}

/** What checking a witness file by itself found. */
export interface WitnessLogVerification {
  ok: boolean
  /** Chains (a kind and a tenant) the file holds tree heads of. */
  chains: number
  /** Distinct tree heads. */
  entries: number
  /** Tree heads shown by a consistency proof to extend the one before. */
  proven: number
  /** Tree heads with no proof from the one before (a chain's first, or from before proofs were written). */
  unproven: number
  failure?: { chain: string; treeSize: number; reason: string }
}

/**
 * Checks a witness file with nothing else (no database): every tree head signed by a trusted key of its own bank (see
 * trustedKeysFor), no two different
 * heads of one size (a fork), and every head that carries a consistency proof from the one before it in the file
 * proven to extend it, so the log the bank showed the witness only ever grew.
 */
export function verifyWitnessLog(file: string, keys: Map<string, TrustedKey>): WitnessLogVerification {
  const byChain = new Map<string, Map<number, WitnessEntry>>()
  let failure: WitnessLogVerification['failure']
  for (const entry of readEntries(file)) {
    const chain = `${entry.type} ${entry.tenantId}`
    const heads = byChain.get(chain) ?? new Map<number, WitnessEntry>()
    byChain.set(chain, heads)
    const seen = heads.get(entry.treeSize)
    if (seen && seen.rootHash !== entry.rootHash) {
      failure ??= { chain, treeSize: entry.treeSize, reason: 'two different tree heads of the same size (a fork)' }
    }
    if (!seen) heads.set(entry.treeSize, entry)
  }
  const result = { chains: byChain.size, entries: 0, proven: 0, unproven: 0 }
  for (const [chain, heads] of byChain) {
    const kind = /^strongroom-(audit|archive)-checkpoint\/v1$/.exec(chain.split(' ')[0] ?? '')?.[1] as ChainKind
    let previous: WitnessEntry | undefined
    for (const entry of [...heads.values()].sort((a, b) => a.treeSize - b.treeSize)) {
      result.entries++
      const at = { chain, treeSize: entry.treeSize }
      const bad = kind
        ? checkCheckpoint(kind, entry.tenantId, storedForm(entry), undefined, trustedKeysFor(keys, entry.tenantId))
        : 'not a checkpoint of a known chain'
      if (bad) failure ??= { ...at, reason: bad }
      const proof = entry.consistency
      if (previous && proof?.fromTreeSize === previous.treeSize) {
        const consistent =
          proof.fromRootHash === previous.rootHash &&
          verifyConsistency(
            previous.treeSize,
            entry.treeSize,
            Buffer.from(previous.rootHash, 'hex'),
            Buffer.from(entry.rootHash, 'hex'),
            proof.proof.map((node) => Buffer.from(node, 'hex')),
          )
        if (consistent) result.proven++
        else failure ??= { ...at, reason: `does not extend the tree head of size ${previous.treeSize}` }
      } else {
        result.unproven++
      }
      previous = entry
    }
  }
  return { ok: failure === undefined, ...result, ...(failure ? { failure } : {}) }
}
