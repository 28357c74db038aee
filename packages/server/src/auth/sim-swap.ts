import type { AccessTokenSource } from './operator-oauth.ts'

/**
 * Whether a phone number's SIM card changed recently, asked of the carrier. A swapped SIM is how SMS codes get stolen,
 * so SMS-based factors and identities are trusted only after this check.
 */
export interface SimSwapProvider {
  /** True when the SIM changed within the last `maxAgeHours`. */
  check(phoneNumber: string, maxAgeHours: number): Promise<boolean>
  /** When the SIM last changed, if the carrier knows. */
  retrieveDate(phoneNumber: string): Promise<Date | null>
}

/** The carrier did not answer, or answered nonsense: the caller must fail closed. */
export class SimSwapUnavailable extends Error {
  constructor(
    readonly reason:
      | 'timeout'
      | 'carrier error'
      | 'carrier authorization failed'
      | 'not configured'
      | 'malformed answer',
  ) {
    super(`SIM swap check unavailable: ${reason}`)
    this.name = 'SimSwapUnavailable'
  }
}

const TIMEOUT_MS = 3000

/**
 * The GSMA CAMARA SIM Swap API (`POST {base}/check` with `{phoneNumber, maxAge}` → `{swapped}`, and
 * `POST {base}/retrieve-date` → `{latestSimChange}`), as carriers expose it behind their API gateways. Each call
 * carries a bearer token: a static one, or one from the operator's OAuth token endpoint; a call the API refuses for
 * its token (401) is tried once more with a fresh one.
 */
export function camaraSimSwap(options: {
  baseUrl: string
  accessToken?: string | AccessTokenSource | undefined
  fetch?: typeof fetch
}) {
  const doFetch = options.fetch ?? fetch
  const credentials = options.accessToken
  async function bearer(phoneNumber: string): Promise<string | undefined> {
    if (credentials === undefined || typeof credentials === 'string') return credentials
    try {
      return await credentials.token(phoneNumber)
    } catch {
      throw new SimSwapUnavailable('carrier authorization failed')
    }
  }
  async function send(path: string, body: unknown, token: string | undefined): Promise<Response> {
    try {
      return await doFetch(`${options.baseUrl.replace(/\/+$/, '')}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      })
    } catch (error) {
      throw new SimSwapUnavailable((error as Error).name === 'TimeoutError' ? 'timeout' : 'carrier error')
    }
  }
  async function call(path: string, body: { phoneNumber: string; maxAge?: number }): Promise<Record<string, unknown>> {
    const token = await bearer(body.phoneNumber)
    let response = await send(path, body, token)
    if (response.status === 401 && token && typeof credentials === 'object') {
      await response.body?.cancel()
      credentials.refused(token)
      response = await send(path, body, await bearer(body.phoneNumber))
    }
    if (response.status === 401 || response.status === 403) throw new SimSwapUnavailable('carrier authorization failed')
    if (!response.ok) throw new SimSwapUnavailable('carrier error')
    try {
      return (await response.json()) as Record<string, unknown>
    } catch {
      throw new SimSwapUnavailable('malformed answer')
    }
  }
  const provider: SimSwapProvider = {
    async check(phoneNumber, maxAgeHours) {
      const answer = await call('/check', { phoneNumber, maxAge: maxAgeHours })
      if (typeof answer.swapped !== 'boolean') throw new SimSwapUnavailable('malformed answer')
      return answer.swapped
    },
    async retrieveDate(phoneNumber) {
      const answer = await call('/retrieve-date', { phoneNumber })
      if (answer.latestSimChange === null || answer.latestSimChange === undefined) return null
      const date = new Date(String(answer.latestSimChange))
      if (Number.isNaN(date.getTime())) throw new SimSwapUnavailable('malformed answer')
      return date
    },
  }
  return provider
}

export interface SimSwapAssessment {
  swapped: boolean
  latestSimChange: string | null
  windowHours: number
  /** SMS OTP, SMS yes/no and SMS-based identity may be used for this number. */
  smsFactorsAllowed: boolean
  risk: 'normal' | 'high'
}

/** The one place that turns the carrier's answer into what SMS factors may do. */
export async function assessSimSwap(
  provider: SimSwapProvider,
  phoneNumber: string,
  windowHours: number,
): Promise<SimSwapAssessment> {
  const [swapped, latest] = await Promise.all([
    provider.check(phoneNumber, windowHours),
    provider.retrieveDate(phoneNumber),
  ])
  return {
    swapped,
    latestSimChange: latest?.toISOString() ?? null,
    windowHours,
    smsFactorsAllowed: !swapped,
    risk: swapped ? 'high' : 'normal',
  }
}
