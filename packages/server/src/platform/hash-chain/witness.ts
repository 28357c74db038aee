import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { ChainKind } from './checkpoint.ts'
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

export function witnessEntry(kind: ChainKind, row: CheckpointRow): WitnessEntry {
  return {
    type: `strongroom-${kind}-checkpoint/v1`,
    tenantId: row.tenant_id,
    treeSize: Number(row.tree_size),
    rootHash: Buffer.from(row.root_hash).toString('hex'),
    signedAt: new Date(row.signed_at).toISOString(),
    keyId: row.key_id,
    signature: Buffer.from(row.signature).toString('base64url'),
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
    await witness.record(rows.map((row) => witnessEntry(kind, row)))
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

/** The checkpoints a witness file holds for one chain, in the stored form the walk checks (duplicates kept). */
export function readWitnessFile(file: string, kind: ChainKind, tenantId: string): StoredCheckpoint[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    throw new WitnessFileError(`the witness file ${file} cannot be read`)
  }
  const checkpoints: StoredCheckpoint[] = []
  for (const [index, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue
    let entry: WitnessEntry
    try {
      entry = JSON.parse(line)
    } catch {
      throw new WitnessFileError(`the witness file ${file} has a malformed line ${index + 1}`)
    }
    if (entry.type !== `strongroom-${kind}-checkpoint/v1` || entry.tenantId !== tenantId) continue
    if (!Number.isSafeInteger(entry.treeSize) || !/^[0-9a-f]{64}$/.test(entry.rootHash ?? '')) {
      throw new WitnessFileError(`the witness file ${file} has a malformed line ${index + 1}`)
    }
    checkpoints.push({
      tree_size: entry.treeSize,
      root_hash: Buffer.from(entry.rootHash, 'hex'),
      signed_at: entry.signedAt,
      key_id: entry.keyId,
      signature: Buffer.from(entry.signature, 'base64url'),
      witnessed: true,
    })
  }
  return checkpoints
}
