import { type Credentials, DEFAULT_TIMEOUT_MS, DeviceKey } from './credentials.ts'
import { platformFetch } from './encoding.ts'
import { StrongroomError } from './errors.ts'
import type { ProblemDocument } from './protocol.ts'
import { executeRemoteWipe, isDeviceWipedProblem, type RemoteWipeOptions } from './remote-wipe.ts'
import { MessageStream, type StreamOptions } from './stream.ts'

export interface ClientOptions {
  /** One server, or several nodes to fail over between (tried in order, then round again). */
  baseUrl: string | string[]
  credentials: Credentials
  fetch?: typeof fetch
  /**
   * How long a request may wait for its answer before the node counts as unreachable and the next is tried
   * (10 s by default).
   */
  timeoutMs?: number
  /** The WebSocket class: the browser's by default; in Node pass the `ws` package's where there is none. */
  WebSocket?: WebSocketConstructor
  /** A device: what to erase when the server answers its revoked key with a wipe command, and the pinned keys. */
  remoteWipe?: RemoteWipeOptions
}

export type WebSocketConstructor = new (url: string) => WebSocket

/** How often a create answered 409 in progress is sent again with its key, and the longest wait between (s). */
const IN_PROGRESS_RETRIES = 3
const MAX_RETRY_AFTER_SECONDS = 5

/** The integrity token a device's requests carry once it attested, and how to get a new one when it expires. */
export interface IntegrityGrant {
  token: string
  /** Attests again (the server answered `integrity/expired`). */
  renew: () => Promise<unknown>
  /** Set when the server's policy wants an App Attest assertion on every gated request. */
  assertRequest: ((clientData: string) => Promise<string>) | undefined
}

/**
 * How every client reaches the server, whoever it acts for: requests over HTTP (failover between nodes, timeouts,
 * DPoP proofs and token renewal through the credentials, an idempotency key on every POST, the device's integrity
 * token and remote wipe) and the realtime stream. The device, staff and backend clients are each a set of API calls
 * over one of these.
 */
export class Transport {
  readonly baseUrls: string[]
  readonly fetch: typeof fetch
  readonly timeoutMs: number
  readonly #WebSocket: WebSocketConstructor | undefined
  readonly #remoteWipe: RemoteWipeOptions | undefined
  #credentials: Credentials
  #current = 0
  #integrity: IntegrityGrant | undefined

  constructor(options: ClientOptions) {
    this.baseUrls = (Array.isArray(options.baseUrl) ? options.baseUrl : [options.baseUrl]).map((u) =>
      u.replace(/\/+$/, ''),
    )
    if (this.baseUrls.length === 0) throw new TypeError('baseUrl must name at least one server')
    this.#credentials = options.credentials
    this.fetch = options.fetch ?? platformFetch
    this.#WebSocket = options.WebSocket ?? (globalThis.WebSocket as WebSocketConstructor | undefined)
    this.#remoteWipe = options.remoteWipe
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  }

  /** How requests authenticate: a device key (replaced when the device re-keys), a staff token or a client assertion. */
  get credentials(): Credentials {
    return this.#credentials
  }

  /** A device that re-keyed acts with its new key from now on; the integrity token of the old one has ended. */
  replaceCredentials(credentials: Credentials): void {
    this.#credentials = credentials
    this.#integrity = undefined
  }

  /** The server in use; `failover()` moves to the next one. */
  get baseUrl(): string {
    return this.baseUrls[this.#current] as string
  }

  failover(): void {
    this.#current = (this.#current + 1) % this.baseUrls.length
  }

  /** The integrity token every request carries from now on (a device that attested). */
  holdIntegrity(grant: IntegrityGrant): void {
    this.#integrity = grant
  }

  get integrityToken(): string | undefined {
    return this.#integrity?.token
  }

  /**
   * The App Attest assertion a request carries when the bank's policy asks for one: the native layer's
   * `generateAssertion` over SHA-256 of the request's DPoP proof. Undefined when none is asked for.
   */
  async requestAssertion(dpop: string | undefined): Promise<string | undefined> {
    const assertRequest = this.#integrity?.assertRequest
    return assertRequest && dpop ? assertRequest(dpop) : undefined
  }

  /**
   * Sends one request. A 401 from an expired device token is retried once with a fresh token; a server that gives no
   * answer (refused, reset, unreachable, or silent past `timeoutMs`) is skipped for the next one, if there are
   * several. A request that timed out may have reached the node: the API's writes that a client repeats carry an
   * idempotency key (a message's clientMessageId), and every POST carries an `Idempotency-Key` header, the same on
   * each attempt, so that a create the first node committed is answered, not made again, by the next. Routes that take
   * no key (messages, which have their clientMessageId) ignore it: 57 bytes, no work on the server. A 503
   * `server/unavailable` (a node shutting down) is answered by the next node too.
   */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.exchange(method, path, body)
    return (response.status === 204 ? undefined : await response.json()) as T
  }

  /** `request`, answering with the successful response itself: for bodies that are not JSON, or that stream. */
  async exchange(method: string, path: string, body?: unknown): Promise<Response> {
    let renewed = false
    let reattested = false
    let unreachable = 0
    let stillInProgress = 0
    // One key for the logical request, sent again with every attempt (IETF draft-ietf-httpapi-idempotency-key-header).
    const idempotencyKey = method === 'POST' ? `"${crypto.randomUUID()}"` : undefined
    for (;;) {
      const url = this.baseUrl + path
      let auth: Awaited<ReturnType<Credentials['authorize']>>
      try {
        auth = await this.#credentials.authorize(method, url)
      } catch (error) {
        // Token renewal refused with a wipe command: the device key was revoked.
        if (error instanceof StrongroomError && isDeviceWipedProblem(error.problem))
          await this.obeyWipeCommand(error.problem)
        // A renewal the node never answered (refused, reset, timed out): renew on the next node, as a request would.
        if (error instanceof StrongroomError || ++unreachable >= this.baseUrls.length) throw error
        this.failover()
        continue
      }
      const headers: Record<string, string> = { authorization: auth.authorization }
      if (auth.dpop) headers.dpop = auth.dpop
      if (this.#integrity?.token && !path.startsWith('/v1/integrity/')) {
        headers['strongroom-integrity'] = this.#integrity.token
        const assertion = await this.requestAssertion(auth.dpop)
        if (assertion) headers['strongroom-assertion'] = assertion
      }
      if (body !== undefined) headers['content-type'] = 'application/json'
      if (idempotencyKey) headers['idempotency-key'] = idempotencyKey
      let response: Response
      try {
        response = await this.fetch(url, {
          method,
          headers,
          body: body === undefined ? null : JSON.stringify(body),
          signal: AbortSignal.timeout(this.timeoutMs),
        })
      } catch (error) {
        // No answer: refused, reset, unreachable or timed out. The next node is tried, each once.
        if (++unreachable >= this.baseUrls.length) throw error
        this.failover()
        continue
      }
      if (response.ok) return response
      const payload = await response.json()
      // A node shutting down (or without its database) refused the request without running it: the next node.
      if (
        response.status === 503 &&
        payload?.type?.endsWith('/server/unavailable') &&
        ++unreachable < this.baseUrls.length
      ) {
        this.failover()
        continue
      }
      // An earlier attempt with this key (on a node that stopped answering) still holds it: the same key again after
      // Retry-After, by when that attempt has finished or the server has rolled it back.
      if (
        response.status === 409 &&
        payload?.type?.endsWith('/request/idempotency-key-in-progress') &&
        ++stillInProgress <= IN_PROGRESS_RETRIES
      ) {
        const seconds = Math.min(Number(response.headers.get('retry-after')) || 1, MAX_RETRY_AFTER_SECONDS)
        await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
        continue
      }
      if (isDeviceWipedProblem(payload)) await this.obeyWipeCommand(payload)
      if (response.status === 401 && !renewed && payload?.type?.endsWith('/auth/invalid-token')) {
        renewed = true
        this.#credentials.invalidate()
        continue
      }
      if (response.status === 401 && !reattested && this.#integrity && payload?.type?.endsWith('/integrity/expired')) {
        reattested = true
        await this.#integrity.renew()
        continue
      }
      throw new StrongroomError(payload)
    }
  }

  /**
   * The server said this device is revoked (`identity/device-wiped`, over HTTP or on the stream): with `remoteWipe`
   * configured and a command that verifies against the pinned keys, erases the stores and confirms. A command that
   * does not verify (forged, or for another device) changes nothing. Returns whether the device wiped.
   */
  async obeyWipeCommand(problem: ProblemDocument): Promise<boolean> {
    if (!this.#remoteWipe || !isDeviceWipedProblem(problem) || !(this.#credentials instanceof DeviceKey)) return false
    const { wiped } = await executeRemoteWipe(problem.wipeCommand, {
      ...this.#remoteWipe,
      baseUrl: this.baseUrl,
      keys: this.#credentials.keys,
      fetch: this.fetch,
    })
    return wiped
  }

  /**
   * After the stream was closed as revoked (4003) without a command: asks for one by renewing the token with the
   * device key, which a revoked key is answered with; obeys it if it verifies. Returns whether the device wiped.
   */
  async checkRevocation(): Promise<boolean> {
    if (!this.#remoteWipe || !(this.#credentials instanceof DeviceKey)) return false
    this.#credentials.invalidate()
    try {
      await this.#credentials.authorize('GET', `${this.baseUrl}/v1/me`)
      return false
    } catch (error) {
      if (error instanceof StrongroomError && isDeviceWipedProblem(error.problem)) {
        return this.obeyWipeCommand(error.problem)
      }
      return false
    }
  }

  /**
   * Opens the realtime stream: every message of the caller's conversations in order, across reconnects, with no gap
   * and no duplicate.
   */
  stream(options: StreamOptions = {}): MessageStream {
    if (!this.#WebSocket) throw new TypeError('no WebSocket implementation: pass the WebSocket option')
    return new MessageStream(this, this.#WebSocket, options)
  }
}
