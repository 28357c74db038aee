import { ProviderRejectedError, ProviderUnavailableError } from './errors.ts'

/** One logical send: every attempt posts exactly these headers and body, idempotency key included. */
export interface ProviderRequest {
  url: string
  headers: Record<string, string>
  body: string
}

export interface RetryPolicy {
  maxAttempts: number
  baseDelayMs: number
  maxDelayMs: number
  /** The longest Retry-After waited out in place; a longer one ends the attempts so the caller can reschedule. */
  maxRetryAfterMs: number
  timeoutMs: number
}

/** Seams for tests: the HTTP client, the wait between attempts, the clock (for Retry-After dates) and the jitter. */
export interface TransportDependencies {
  fetch: typeof fetch
  sleep: (ms: number) => Promise<void>
  now: () => number
  random: () => number
}

export type TransportOptions = Partial<RetryPolicy & TransportDependencies>

const DEFAULT_POLICY: RetryPolicy = {
  maxAttempts: 4,
  baseDelayMs: 500,
  maxDelayMs: 8000,
  maxRetryAfterMs: 30_000,
  timeoutMs: 10_000,
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** The policy with defaults, field by field, so that an option passed as undefined keeps its default. */
export function retryPolicyOf(options: TransportOptions): RetryPolicy {
  return {
    maxAttempts: options.maxAttempts ?? DEFAULT_POLICY.maxAttempts,
    baseDelayMs: options.baseDelayMs ?? DEFAULT_POLICY.baseDelayMs,
    maxDelayMs: options.maxDelayMs ?? DEFAULT_POLICY.maxDelayMs,
    maxRetryAfterMs: options.maxRetryAfterMs ?? DEFAULT_POLICY.maxRetryAfterMs,
    timeoutMs: options.timeoutMs ?? DEFAULT_POLICY.timeoutMs,
  }
}

/**
 * Posts a request until the provider takes it: network errors, timeouts, 429 and 5xx are retried with exponential
 * backoff and jitter, or after the provider's Retry-After; any other status is final. Resolves with the success
 * response's JSON body (undefined if it has none), throws ProviderRejectedError or ProviderUnavailableError.
 */
export async function sendWithRetries(request: ProviderRequest, options: TransportOptions = {}): Promise<unknown> {
  const policy = retryPolicyOf(options)
  const doFetch = options.fetch ?? fetch
  const wait = options.sleep ?? sleep
  const now = options.now ?? Date.now
  const random = options.random ?? Math.random
  for (let attempt = 1; ; attempt++) {
    let response: Response | undefined
    try {
      response = await doFetch(request.url, {
        method: 'POST',
        headers: request.headers,
        body: request.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(policy.timeoutMs),
      })
    } catch {
      // A network error or timeout: the provider may or may not have the message, which is what idempotency keys
      // are for. The error itself is dropped, as it can name the URL.
    }
    if (response?.ok) return readJson(response)
    if (response && !isRetryable(response.status)) {
      throw new ProviderRejectedError(response.status, providerErrorCode(await readJson(response)))
    }
    const retryAfterMs = response ? parseRetryAfter(response.headers.get('retry-after'), now()) : undefined
    await response?.body?.cancel().catch(() => {})
    if (attempt >= policy.maxAttempts) throw new ProviderUnavailableError(attempt, response?.status, retryAfterMs)
    if (retryAfterMs !== undefined && retryAfterMs > policy.maxRetryAfterMs) {
      throw new ProviderUnavailableError(attempt, response?.status, retryAfterMs)
    }
    await wait(retryAfterMs ?? backoffMs(attempt, policy, random()))
  }
}

function isRetryable(status: number): boolean {
  return status === 429 || status >= 500
}

/** Exponential, capped, and jittered over its upper half so that clients failing together do not retry together. */
export function backoffMs(attempt: number, policy: RetryPolicy, random: number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1))
  return Math.round(ceiling / 2 + (random * ceiling) / 2)
}

/** Retry-After as delay-seconds or an HTTP date (RFC 9110 §10.2.3); anything else is ignored. */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null) return undefined
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs)
}

async function readJson(response: Response): Promise<unknown> {
  try {
    return await response.json()
  } catch {
    return undefined
  }
}

/** The error code in a provider's JSON error: `code` for Twilio, `error.code` for the Meta Graph API. */
function providerErrorCode(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined
  const error = 'error' in body && typeof body.error === 'object' && body.error !== null ? body.error : body
  if (!('code' in error)) return undefined
  return typeof error.code === 'number' || typeof error.code === 'string' ? String(error.code) : undefined
}
