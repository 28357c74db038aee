import { readFile } from 'node:fs/promises'
import { Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import type { ServerContext } from '../platform/context.ts'
import { AttestationError } from './verifiers/verifier.ts'

/**
 * Google's Android attestation status list (https://developer.android.com/privacy-and-security/security-key-attestation
 * #certificate_status): `{ "entries": { "<serial, lowercase hex>": { "status": "REVOKED" | "SUSPENDED", "reason": … } } }`,
 * naming every attestation certificate (batch intermediates, and keys leaked from a device model) that must no longer
 * be trusted. A bank can mirror it and name its copy instead.
 */
export const GOOGLE_ATTESTATION_STATUS_URL = 'https://android.googleapis.com/attestation/status'

const StatusListDocument = Type.Object({
  entries: Type.Record(
    Type.String(),
    Type.Object({ status: Type.String({ maxLength: 50 }), reason: Type.Optional(Type.String({ maxLength: 200 })) }),
  ),
})

/** The list is a few hundred kilobytes today; anything far larger is not Google's list. */
const MAX_LIST_BYTES = 16 * 1024 * 1024
const FETCH_TIMEOUT_MS = 15_000

export interface AttestationStatus {
  status: 'REVOKED' | 'SUSPENDED'
  reason?: string | undefined
}

/** Serial numbers as the list writes them and as the chain check asks: lowercase hex without leading zeros. */
const normalSerial = (serial: string) => serial.toLowerCase().replace(/^0+(?=.)/, '')

/** Reads a status list document; a malformed one is an error, so that the last good list stays in force. */
export function parseAttestationStatusList(text: string): Map<string, AttestationStatus> {
  const document: unknown = JSON.parse(text)
  if (!Value.Check(StatusListDocument, document)) throw new Error('the attestation status list is malformed')
  const entries = new Map<string, AttestationStatus>()
  for (const [serial, entry] of Object.entries(document.entries)) {
    if (!/^[0-9a-fA-F]{1,80}$/.test(serial)) throw new Error('the attestation status list names a malformed serial')
    // Statuses Google may add later are not ignored: an unknown status is treated as a suspension.
    const status = entry.status === 'REVOKED' ? 'REVOKED' : 'SUSPENDED'
    entries.set(normalSerial(serial), { status, reason: entry.reason })
  }
  return entries
}

export interface AttestationStatusListOptions {
  /** A file path, or an https:// (http:// for a local mirror) URL. */
  source: string
  /** How often `refreshIfDue` loads the list again. */
  refreshMs: number
  /** How long a list is trusted without a successful refresh; after that, Android attestations are refused. */
  maxAgeMs: number
  now?: () => number
}

/**
 * The status list as this node last loaded it. Until a first load succeeds, and once the last successful load is older
 * than `maxAgeMs`, it answers no question: an attestation checked against no list, or a list weeks old, would let a
 * revoked batch key through, so the check fails closed (`revocation-status-unavailable`). A failed refresh keeps the
 * list in force until then.
 */
export class AttestationStatusList {
  readonly #options: AttestationStatusListOptions
  readonly #now: () => number
  #entries: Map<string, AttestationStatus> | undefined
  #loadedAt = 0
  #attemptedAt = 0

  constructor(options: AttestationStatusListOptions) {
    this.#options = options
    this.#now = options.now ?? Date.now
  }

  /** Loads the list again from its source; throws (keeping the previous list) when it cannot. */
  async refresh(): Promise<void> {
    this.#attemptedAt = this.#now()
    this.#entries = parseAttestationStatusList(await this.#read())
    this.#loadedAt = this.#now()
  }

  /** Refreshes when the last attempt, successful or not, is `refreshMs` old. */
  async refreshIfDue(): Promise<void> {
    if (this.#now() - this.#attemptedAt >= this.#options.refreshMs) await this.refresh()
  }

  /** The status of a certificate, undefined when it is in good standing. */
  statusOf(serialNumber: string): AttestationStatus | undefined {
    if (this.#entries === undefined || this.#now() - this.#loadedAt > this.#options.maxAgeMs) {
      throw new AttestationError('revocation-status-unavailable')
    }
    return this.#entries.get(normalSerial(serialNumber))
  }

  /** For the chain check: revoked and suspended certificates are both refused. */
  readonly isRevoked = (serialNumber: string): boolean => this.statusOf(serialNumber) !== undefined

  async #read(): Promise<string> {
    const { source } = this.#options
    if (!/^https?:\/\//.test(source)) return readFile(source, 'utf8')
    const response = await fetch(source, { redirect: 'error', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) })
    if (!response.ok) {
      await response.body?.cancel()
      throw new Error(`the attestation status list answered HTTP ${response.status}`)
    }
    if (Number(response.headers.get('content-length') ?? 0) > MAX_LIST_BYTES) {
      await response.body?.cancel()
      throw new Error('the attestation status list is too large')
    }
    const text = await response.text()
    if (text.length > MAX_LIST_BYTES) throw new Error('the attestation status list is too large')
    return text
  }
}

/**
 * Google's attestation status list as the deployment names it (`STRONGROOM_ANDROID_ATTEST_STATUS`): Google's URL in
 * production unless the bank mirrors it, none in dev unless a file or URL is named. The first load happens here; when
 * it fails the server starts anyway and Android attestations are refused until a refresh succeeds. A list not
 * refreshed for four intervals (and at least a day) is stale.
 */
export async function openAttestationStatusList(
  ctx: Pick<ServerContext, 'config' | 'log'>,
): Promise<AttestationStatusList | undefined> {
  const { config } = ctx
  const source =
    config.androidAttestStatus ?? (config.mode === 'production' ? GOOGLE_ATTESTATION_STATUS_URL : undefined)
  if (source === undefined || source === 'none') return undefined
  const refreshMs = config.androidAttestStatusRefreshSeconds * 1000
  const list = new AttestationStatusList({ source, refreshMs, maxAgeMs: Math.max(4 * refreshMs, 24 * 3600 * 1000) })
  await list.refresh().catch((error: unknown) => {
    ctx.log.warn({ err: error }, 'the Android attestation status list could not be loaded; Android attestations wait')
  })
  return list
}
