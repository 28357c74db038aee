import type { StaffSessionToken } from './auth-protocol.ts'
import type { Credentials } from './credentials.ts'
import { platformFetch } from './encoding.ts'
import { StrongroomError } from './errors.ts'
import { type PublicRequestOptions, postWithoutCredentials } from './public-request.ts'
import { routeRequest } from './route-path.ts'
import type { WireAnswer } from './wire-contract.ts'

export type { StaffSessionToken }

const RENEW_BEFORE_MS = 60_000

/**
 * A staff member signed in through the bank's identity provider: a short-lived staff token (ten minutes), renewed from
 * the server shortly before it runs out while the session lasts (never past its end: then the staff member signs in
 * again), kept in memory only. Signing out ends every token of the session and gives the identity provider's logout
 * URL, where it has one.
 *
 * @example
 * const session = await claimStaffSession({ baseUrl, tenantId, handoff }) // from the console's #oidc=… fragment
 * const client = new StaffClient({ baseUrl, credentials: session })
 * const { endSessionUrl } = await session.signOut()
 */
export class StaffSession implements Credentials {
  readonly staffId: string
  readonly sessionExpiresAt: number
  readonly #baseUrl: string
  readonly #fetch: typeof fetch
  #token: { value: string; expiresAt: number }
  #renewing: Promise<string> | undefined

  constructor(issued: StaffSessionToken, options: PublicRequestOptions) {
    this.staffId = issued.staffId
    this.sessionExpiresAt = Date.parse(issued.sessionExpiresAt)
    this.#token = { value: issued.token, expiresAt: Date.parse(issued.expiresAt) }
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '')
    this.#fetch = options.fetch ?? platformFetch
  }

  async authorize() {
    return { authorization: `Bearer ${await this.#current()}` }
  }

  /** A refused token cannot be renewed with: the next request is refused too, and the console signs in again. */
  invalidate() {}

  async #current(): Promise<string> {
    const renewable = this.#token.expiresAt < this.sessionExpiresAt
    if (!renewable || this.#token.expiresAt - RENEW_BEFORE_MS > Date.now()) return this.#token.value
    this.#renewing ??= this.#post('POST /v1/staff/session/refresh', this.#token.value)
      .then((issued) => {
        this.#token = { value: issued.token, expiresAt: Date.parse(issued.expiresAt) }
        return issued.token
      })
      .finally(() => {
        this.#renewing = undefined
      })
    return this.#renewing
  }

  /** Ends the session on the server (every token of it); the identity provider's logout URL, if it offers one. */
  async signOut(): Promise<WireAnswer<'POST /v1/staff/session/sign-out'>> {
    return this.#post('POST /v1/staff/session/sign-out', this.#token.value)
  }

  async #post<R extends 'POST /v1/staff/session/refresh' | 'POST /v1/staff/session/sign-out'>(
    route: R,
    token: string,
  ): Promise<WireAnswer<R>> {
    const response = await this.#fetch(`${this.#baseUrl}${routeRequest(route, {}).path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    })
    const body = await response.json()
    if (!response.ok) throw new StrongroomError(body)
    return body
  }
}

/**
 * The console's first token after a sign-in through the bank's identity provider: the single-use handoff code the
 * server put in the console's address fragment, exchanged within a minute.
 */
export async function claimStaffSession(
  options: PublicRequestOptions & { tenantId: string; handoff: string },
): Promise<StaffSession> {
  const issued = await postWithoutCredentials(options, 'POST /v1/staff/oidc/session', {
    tenantId: options.tenantId,
    handoff: options.handoff,
  })
  return new StaffSession(issued, options)
}
