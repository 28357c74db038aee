import { SignJWT } from 'jose'
import type { DeviceKeys } from './device-keys.ts'
import { createDpopProof } from './dpop.ts'
import { platformFetch } from './encoding.ts'
import { StrongroomError } from './errors.ts'
import { queryString } from './route-path.ts'
import type { ClientToken, ClientTokenRequest } from './tenancy-protocol.ts'
import type { WireAnswer } from './wire-contract.ts'

/** What a request or a stream presents: an Authorization header value and, for devices, a DPoP proof. */
export interface Credentials {
  authorize(htm: string, htu: string): Promise<{ authorization: string; dpop?: string }>
  /** Forget a token the server no longer accepts; the next authorize gets a fresh one if it can. */
  invalidate(): void
}

/** A staff member's API token (srs_…), sent as a bearer token. */
export class StaffToken implements Credentials {
  readonly #token: string
  constructor(token: string) {
    this.#token = token
  }
  async authorize() {
    return { authorization: `Bearer ${this.#token}` }
  }
  invalidate() {}
}

const RENEW_BEFORE_MS = 30_000
/** How long a token request waits for an answer (the client's default request timeout). */
export const DEFAULT_TIMEOUT_MS = 10_000

/**
 * An enrolled device: its key pair signs a DPoP proof for every request, and it renews its short-lived access token
 * by proving the key again, so there is no long-lived secret to steal.
 */
export class DeviceKey implements Credentials {
  readonly keys: DeviceKeys
  #token: { value: string; expiresAt: number } | undefined
  #renewing: Promise<string> | undefined
  readonly #fetch: typeof fetch
  readonly #timeoutMs: number

  constructor(
    keys: DeviceKeys,
    options: { accessToken?: string; expiresIn?: number; fetch?: typeof fetch; timeoutMs?: number } = {},
  ) {
    this.keys = keys
    this.#fetch = options.fetch ?? platformFetch
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    if (options.accessToken && options.expiresIn) {
      this.#token = { value: options.accessToken, expiresAt: Date.now() + options.expiresIn * 1000 }
    }
  }

  async authorize(htm: string, htu: string) {
    const accessToken = await this.#accessToken(new URL(htu).origin)
    return { authorization: `DPoP ${accessToken}`, dpop: await createDpopProof(this.keys, { htm, htu, accessToken }) }
  }

  invalidate() {
    this.#token = undefined
  }

  async #accessToken(origin: string): Promise<string> {
    if (this.#token && this.#token.expiresAt - RENEW_BEFORE_MS > Date.now()) return this.#token.value
    this.#renewing ??= this.#renew(origin).finally(() => {
      this.#renewing = undefined
    })
    return this.#renewing
  }

  async #renew(origin: string): Promise<string> {
    const htu = `${origin}/v1/devices/token`
    // A node that does not answer in time fails the renewal like a refused connection: the caller moves on.
    const response = await this.#fetch(htu, {
      method: 'POST',
      headers: { dpop: await createDpopProof(this.keys, { htm: 'POST', htu }) },
      signal: AbortSignal.timeout(this.#timeoutMs),
    })
    const body = await response.json()
    if (!response.ok) throw new StrongroomError(body)
    const token = body as WireAnswer<'POST /v1/devices/token'>
    this.#token = { value: token.accessToken, expiresAt: Date.now() + token.expiresIn * 1000 }
    return token.accessToken
  }
}

/**
 * A bank backend, as an OAuth 2.0 client using private_key_jwt (RFC 7523): it signs a short-lived, single-use
 * assertion with its own key to get a bearer token, and gets a new one shortly before the old one expires.
 *
 * @example
 * const credentials = new ClientAssertion({ clientId, privateKey, algorithm: 'ES256', tokenEndpoint })
 * const bank = new BackendClient({ baseUrl, credentials })
 */
export class ClientAssertion implements Credentials {
  readonly #options: ClientAssertionOptions
  readonly #fetch: typeof fetch
  #token: { value: string; expiresAt: number } | undefined

  constructor(options: ClientAssertionOptions & { fetch?: typeof fetch }) {
    this.#options = options
    this.#fetch = options.fetch ?? platformFetch
  }

  async authorize() {
    if (!this.#token || this.#token.expiresAt - RENEW_BEFORE_MS <= Date.now()) this.#token = await this.#requestToken()
    return { authorization: `Bearer ${this.#token.value}` }
  }

  invalidate() {
    this.#token = undefined
  }

  async #requestToken() {
    const { clientId, privateKey, algorithm, keyId, tokenEndpoint, scope } = this.#options
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: algorithm, ...(keyId ? { kid: keyId } : {}) })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(tokenEndpoint)
      .setJti(crypto.randomUUID())
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(privateKey)
    const request: ClientTokenRequest = {
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
      ...(scope ? { scope } : {}),
    }
    const response = await this.#fetch(tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: queryString(request),
      signal: AbortSignal.timeout(this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    })
    const body = await response.json()
    if (!response.ok) {
      throw new StrongroomError({
        type: `urn:ietf:params:oauth:error:${body.error}`,
        title: body.error,
        status: response.status,
        detail: body.error_description,
      })
    }
    const token: ClientToken = body
    return { value: token.access_token, expiresAt: Date.now() + token.expires_in * 1000 }
  }
}

export interface ClientAssertionOptions {
  clientId: string
  /** The private key whose public half was registered (a CryptoKey, or a Node KeyObject). */
  privateKey: CryptoKey | KeyObjectLike
  algorithm: string
  keyId?: string
  tokenEndpoint: string
  /** Space-separated scopes to ask for; all the client's by default. */
  scope?: string
  /** How long the token endpoint may take to answer (10 s by default). */
  timeoutMs?: number
}

/** A Node KeyObject, without depending on Node's types in browsers. */
type KeyObjectLike = { type: string; asymmetricKeyType?: string }
