import { createHash } from 'node:crypto'
import { importPKCS8, SignJWT } from 'jose'
import { ProviderRejectedError, ProviderResponseError, ProviderUnavailableError } from './errors.ts'
import { objectIn, parseJsonBody } from './payload.ts'
import type { TransportOptions } from './retry.ts'

/** The fields of a Google service account's JSON key that the token exchange uses. */
export interface ServiceAccountKey {
  client_email: string
  private_key: string
  private_key_id?: string
  /** https://oauth2.googleapis.com/token in every key Google issues. */
  token_uri: string
}

/** RBM's OAuth scope. */
export const RBM_SCOPE = 'https://www.googleapis.com/auth/rcsbusinessmessaging'
/** A token is renewed this long before Google says it expires. */
const RENEW_BEFORE_MS = 60_000
const ASSERTION_LIFETIME_SECONDS = 3600

/** Reads a service account's JSON key as the console downloads it; throws TypeError naming what is wrong. */
export function parseServiceAccountKey(json: string): ServiceAccountKey {
  let key: unknown
  try {
    key = JSON.parse(json)
  } catch {
    throw new TypeError('the service account key is not JSON')
  }
  const { client_email, private_key, private_key_id, token_uri } = (key ?? {}) as Record<string, unknown>
  if (typeof client_email !== 'string' || typeof private_key !== 'string' || typeof token_uri !== 'string') {
    throw new TypeError('the service account key needs client_email, private_key and token_uri')
  }
  if (!/^https:\/\//.test(token_uri) && !/^http:\/\/127\.0\.0\.1[:/]/.test(token_uri)) {
    throw new TypeError('the service account key’s token_uri must be https')
  }
  return { client_email, private_key, token_uri, ...(typeof private_key_id === 'string' ? { private_key_id } : {}) }
}

/**
 * Access tokens for Google service accounts, by the OAuth 2.0 JWT bearer grant (RFC 7523, as Google's "Using OAuth 2.0
 * for server to server applications" describes): an RS256 assertion signed with the account's private key (`iss` the
 * account, `aud` its token_uri, `scope`, an hour's lifetime) exchanged at token_uri. Each token is kept until a minute
 * before it expires and shared by concurrent callers; one node holds one of these.
 */
export class GoogleAccessTokens {
  readonly #fetch: typeof fetch
  readonly #now: () => number
  readonly #tokens = new Map<string, Promise<{ token: string; until: number }>>()

  constructor(transport: Pick<TransportOptions, 'fetch' | 'now'> = {}) {
    this.#fetch = transport.fetch ?? fetch
    this.#now = transport.now ?? Date.now
  }

  /** A valid access token of the account for the scope, from the cache or newly exchanged. */
  async get(key: ServiceAccountKey, scope: string): Promise<string> {
    const id = createHash('sha256')
      .update(JSON.stringify([key.client_email, key.private_key, scope]))
      .digest('hex')
    const cached = this.#tokens.get(id)
    if (cached) {
      const held = await cached.catch(() => undefined)
      if (held && held.until > this.#now()) return held.token
      if (this.#tokens.get(id) === cached) this.#tokens.delete(id)
    }
    const exchange = this.#exchange(key, scope)
    this.#tokens.set(id, exchange)
    try {
      return (await exchange).token
    } catch (error) {
      this.#tokens.delete(id)
      throw error
    }
  }

  async #exchange(key: ServiceAccountKey, scope: string): Promise<{ token: string; until: number }> {
    const issuedAt = Math.floor(this.#now() / 1000)
    const assertion = await new SignJWT({ scope })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...(key.private_key_id ? { kid: key.private_key_id } : {}) })
      .setIssuer(key.client_email)
      .setAudience(key.token_uri)
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + ASSERTION_LIFETIME_SECONDS)
      .sign(await importPKCS8(key.private_key, 'RS256'))
    let response: Response
    try {
      response = await this.#fetch(key.token_uri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString(),
        signal: AbortSignal.timeout(10_000),
      })
    } catch {
      throw new ProviderUnavailableError(1, undefined)
    }
    if (response.status >= 500 || response.status === 429) throw new ProviderUnavailableError(1, response.status)
    // A refused assertion (a key deleted or disabled, a wrong scope): sending will not work until it is configured.
    if (!response.ok) throw new ProviderRejectedError(response.status, undefined)
    const body = objectIn(parseJsonBody(new Uint8Array(await response.arrayBuffer())), 'not an object')
    const token = body.access_token
    const expiresIn = body.expires_in
    if (typeof token !== 'string' || token === '' || typeof expiresIn !== 'number' || expiresIn <= 0) {
      throw new ProviderResponseError()
    }
    return { token, until: this.#now() + expiresIn * 1000 - RENEW_BEFORE_MS }
  }
}
