import type { JSONWebKeySet } from 'jose'
import { type ConsentRequest, signConsent } from './consent.ts'
import { type Credentials, DEFAULT_TIMEOUT_MS, DeviceKey } from './credentials.ts'
import { type DeviceKeyAlgorithm, type DeviceKeys, generateDeviceKeys } from './device-keys.ts'
import { createDpopProof } from './dpop.ts'
import { bytesToBase64, platformFetch, randomId } from './encoding.ts'
import { StrongroomError } from './errors.ts'
import type { CustomerFactor, FactorProof } from './factors.ts'
import type { AppIdentity, AttestationProvider, AttestedKeyGenerator, RiskSignals } from './integrity.ts'
import { attestationClientData, devAttestation } from './integrity.ts'
import type {
  Passkey,
  PasskeyAssertion,
  PasskeyCreationOptions,
  PasskeyRegistrationCredential,
  PasskeyRequestOptions,
} from './passkeys.ts'
import type { PivotRedemption } from './pivot.ts'
import type { Conversation, Message, ProblemDocument } from './protocol.ts'
import type {
  ConversationChannel,
  PivotLink,
  PublicMessage,
  ReportOutcome,
  SentPublicMessage,
  SuspiciousReport,
} from './public-channels.ts'
import { executeRemoteWipe, fetchWipeKeys, isDeviceWipedProblem, type RemoteWipeOptions } from './remote-wipe.ts'
import { openRuntimeSecret, type SealedSecret, type SecretsKeys } from './secrets.ts'
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
  /** The WebSocket class: the browser's by default; in Node 20 pass the `ws` package's. */
  WebSocket?: WebSocketConstructor
  /** A device: what to erase when the server answers its revoked key with a wipe command, and the pinned keys. */
  remoteWipe?: RemoteWipeOptions
}

export type WebSocketConstructor = new (url: string) => WebSocket

export interface Device {
  id: string
  customerId: string
  /**
   * `app` (can attest its integrity) or `web` (a browser: the secure chat a pivot link opened); the bank's policy says
   * what a browser may do where apps need an integrity token.
   */
  kind: 'app' | 'web'
  /** Null while pending. */
  label: string | null
  /**
   * `pending` (an enrolment code was issued for it), `active`, `suspended` (cut off for a while, may be resumed) or
   * `revoked` (for good).
   */
  status: 'pending' | 'active' | 'suspended' | 'revoked'
  /** Null while pending. */
  keyThumbprint: string | null
  createdAt: string
  /** Pending only: when the enrolment code expires unused. */
  enrolmentExpiresAt?: string
}

export interface Customer {
  id: string
  externalRef: string
  displayName: string
  /** E.164, when the bank gave one: where SMS factors go, and what a SIM-swap check asks about. */
  phoneNumber?: string
  createdAt: string
}

/** The carrier's answer on a number: whether its SIM changed within the bank's window. */
export interface SimSwapRisk {
  swapped: boolean
  latestSimChange: string | null
  windowHours: number
  smsFactorsAllowed: boolean
  risk: 'normal' | 'high'
}

/** The integrity policy's latest decision for a device that attested. */
export interface DeviceVerdict {
  deviceId: string
  decision: 'allow' | 'limited' | 'deny'
  reason: string
  flags: string[]
  format: string
  securityLevel: string
  appVersion: string
  decidedAt: string
}

export interface StaffMember {
  id: string
  tenantId: string
  name: string
  role: 'agent' | 'supervisor' | 'compliance' | 'admin'
  /** False once deactivated (by an admin or the bank's identity provider): they hold no token. */
  active: boolean
}

/** `reassign` keeps the previous assignee a member; `transfer` takes them out of the conversation. */
export type AssignmentMode = 'reassign' | 'transfer'

/** A compliance archive record, decrypted for the caller where it can still be read. */
export interface ArchiveRecord {
  seq: number
  recordClass: string
  conversationId: string | null
  conversationSeq: number | null
  customerId: string | null
  occurredAt: string
  status: 'available' | 'deleted' | 'erased' | 'none'
  content: Record<string, unknown> | null
  hash: string
}

export interface ArchiveSearch {
  customerId?: string
  conversationId?: string
  from?: Date
  to?: Date
  text?: string
  /** The `next` of the previous page. */
  after?: number
  limit?: number
}

/** The archive chain's verification: how far it holds, and the first record that does not. */
export interface ArchiveVerification {
  ok: boolean
  records: number
  checkpoints: number
  pending: number
  deleted: number
  failure?: { seq: number; id: number | null; reason: string }
  verifiedAt: string
}

/** A case to export: a conversation or a customer, optionally within a time range. */
export interface CaseScope {
  conversationId?: string
  customerId?: string
  from?: Date
  to?: Date
}

/** A device as enrolment returns it: active, named, with its key. */
export type ActiveDevice = Device & { status: 'active'; label: string; keyThumbprint: string }

export interface OutgoingMessage {
  contentType: string
  ciphertext: Uint8Array
  /** Makes sending idempotent: the same id returns the same message. A random one is made if absent. */
  clientMessageId?: string
  expiresAt?: Date
}

export interface MessageRange {
  /** Messages after this sequence number. */
  after?: number
  limit?: number
}

/** How many conversations one channel lookup names (the server's limit). */
const CHANNEL_LOOKUP_BATCH = 100
/** How long a request waits for a node's answer before it counts as unreachable. */

function rangeQuery(range: MessageRange): URLSearchParams {
  const query = new URLSearchParams()
  if (range.after !== undefined) query.set('after', String(range.after))
  if (range.limit !== undefined) query.set('limit', String(range.limit))
  return query
}

export interface SentMessage {
  message: Message
  created: boolean
}

/**
 * The Strongroom API, for a device or a staff member alike; what the credentials allow decides what succeeds.
 *
 * @example
 * const client = new StrongroomClient({ baseUrl: 'https://chat.bank.example', credentials: new StaffToken(token) })
 * const conversation = await client.createConversation({ customerId })
 */
export class StrongroomClient {
  readonly baseUrls: string[]
  #credentials: Credentials
  readonly #fetch: typeof fetch
  readonly #WebSocket: WebSocketConstructor | undefined
  readonly #remoteWipe: RemoteWipeOptions | undefined
  readonly #timeoutMs: number
  #current = 0
  #integrity:
    | {
        token: string
        attestation: Parameters<StrongroomClient['attest']>[0]
        /** Set when the server's policy wants an App Attest assertion on every gated request. */
        assertRequest: ((clientData: string) => Promise<string>) | undefined
      }
    | undefined

  constructor(options: ClientOptions) {
    this.baseUrls = (Array.isArray(options.baseUrl) ? options.baseUrl : [options.baseUrl]).map((u) =>
      u.replace(/\/+$/, ''),
    )
    if (this.baseUrls.length === 0) throw new TypeError('baseUrl must name at least one server')
    this.#credentials = options.credentials
    this.#fetch = options.fetch ?? platformFetch
    this.#WebSocket = options.WebSocket ?? (globalThis.WebSocket as WebSocketConstructor | undefined)
    this.#remoteWipe = options.remoteWipe
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
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
      fetch: this.#fetch,
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

  /** How this client authenticates: a device key (replaced by `rekey`), a staff token or a client assertion. */
  get credentials(): Credentials {
    return this.#credentials
  }

  /** The server in use; `failover()` moves to the next one. */
  get baseUrl(): string {
    return this.baseUrls[this.#current] as string
  }

  failover(): void {
    this.#current = (this.#current + 1) % this.baseUrls.length
  }

  /**
   * Sends one request. A 401 from an expired device token is retried once with a fresh token; a server that gives no
   * answer (refused, reset, unreachable, or silent past `timeoutMs`) is skipped for the next one, if there are
   * several. A request that timed out may have reached the node: the API's writes that a client repeats carry an
   * idempotency key (a message's clientMessageId), and every POST carries an `Idempotency-Key` header, the same on
   * each attempt, so that a create the first node committed is answered, not made again, by the next.
   */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.#exchange(method, path, body)
    return (response.status === 204 ? undefined : await response.json()) as T
  }

  /** `request`, answering with the successful response itself: for bodies that are not JSON, or that stream. */
  async #exchange(method: string, path: string, body?: unknown): Promise<Response> {
    let renewed = false
    let reattested = false
    let unreachable = 0
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
        response = await this.#fetch(url, {
          method,
          headers,
          body: body === undefined ? null : JSON.stringify(body),
          signal: AbortSignal.timeout(this.#timeoutMs),
        })
      } catch (error) {
        // No answer: refused, reset, unreachable or timed out. The next node is tried, each once.
        if (++unreachable >= this.baseUrls.length) throw error
        this.failover()
        continue
      }
      if (response.ok) return response
      const payload = await response.json()
      if (isDeviceWipedProblem(payload)) await this.obeyWipeCommand(payload)
      if (response.status === 401 && !renewed && payload?.type?.endsWith('/auth/invalid-token')) {
        renewed = true
        this.#credentials.invalidate()
        continue
      }
      if (response.status === 401 && !reattested && this.#integrity && payload?.type?.endsWith('/integrity/expired')) {
        reattested = true
        await this.attest(this.#integrity.attestation)
        continue
      }
      throw new StrongroomError(payload)
    }
  }

  /**
   * The App Attest assertion a request carries when the bank's policy asks for one: the native layer's
   * `generateAssertion` over SHA-256 of the request's DPoP proof. Undefined when none is asked for.
   */
  async requestAssertion(dpop: string | undefined): Promise<string | undefined> {
    const assertRequest = this.#integrity?.assertRequest
    return assertRequest && dpop ? assertRequest(dpop) : undefined
  }

  /** The integrity token this client sends with every request, once it has attested. */
  get integrityToken(): string | undefined {
    return this.#integrity?.token
  }

  /**
   * A device: proves the app and device and keeps the integrity token the server's policy grants, renewing it by
   * attesting again when it expires. The provider turns the attestation's client data (the server's challenge and
   * the app's identity) into evidence: App Attest (an attestation, then assertions on renewal) or Android Key
   * Attestation from the native layer; the dev provider by default, which only a dev server accepts.
   *
   * @example
   * await client.attest({ app, signals, provider: async () => ({ format: 'android-key' }) })
   */
  async attest(attestation: {
    app: AppIdentity
    signals: RiskSignals
    provider?: AttestationProvider
    /**
     * App Attest: signs a request's client data (its DPoP proof) with `generateAssertion`, for banks whose policy
     * asks for an assertion on every request. Needed only then.
     */
    assertRequest?: (clientData: string) => Promise<string>
  }): Promise<{ expiresIn: number; scope: string }> {
    if (!(this.#credentials instanceof DeviceKey)) throw new TypeError('only an enrolled device can attest')
    const { challenge } = await this.request<{ challenge: string }>('POST', '/v1/integrity/challenges')
    const keys = this.#credentials.keys
    const evidence = attestation.provider
      ? {
          ...(await attestation.provider(attestationClientData(challenge, attestation.app), challenge)),
          challenge,
          ...attestation.app,
          signals: attestation.signals,
        }
      : await devAttestation(keys, challenge, attestation.app, attestation.signals)
    const granted = await this.request<{
      integrityToken: string
      expiresIn: number
      scope: string
      assertRequests: boolean
    }>('POST', '/v1/integrity/attest', evidence)
    if (granted.assertRequests && !attestation.assertRequest) {
      throw new TypeError('the bank asks for an assertion on every request: pass assertRequest to attest')
    }
    this.#integrity = {
      token: granted.integrityToken,
      attestation,
      assertRequest: granted.assertRequests ? attestation.assertRequest : undefined,
    }
    return { expiresIn: granted.expiresIn, scope: granted.scope }
  }

  /**
   * An enrolled Android device: makes a newly generated, attested Keystore key the device key (after an app update,
   * so that the new versionCode is what the server knows). Fetches a device challenge, has the native layer generate
   * the key with its client data as the attestation challenge, sends the chain in a request the current key signs,
   * and from then on acts with the new key (the old key's tokens have ended, and so has the integrity token: attest
   * again). Store the new keys where the old ones were.
   *
   * @example
   * const { keys, versionCode } = await client.rekey({ app, generateAttestedKey: nativeKeystore.generateAttestedKey })
   */
  async rekey(options: { app: AppIdentity; generateAttestedKey: AttestedKeyGenerator }): Promise<{
    keys: DeviceKeys
    keyThumbprint: string
    versionCode: number | undefined
  }> {
    if (!(this.#credentials instanceof DeviceKey)) throw new TypeError('only an enrolled device can re-key')
    const { challenge } = await this.request<{ challenge: string }>('POST', '/v1/integrity/challenges')
    const clientData = attestationClientData(challenge, options.app)
    const { keys, certificateChain } = await options.generateAttestedKey(clientData, challenge)
    const answer = await this.request<{
      token: { accessToken: string; expiresIn: number }
      keyThumbprint: string
      versionCode?: number
    }>('POST', '/v1/integrity/rekey', { challenge, ...options.app, certificateChain })
    this.#credentials = new DeviceKey(keys, {
      accessToken: answer.token.accessToken,
      expiresIn: answer.token.expiresIn,
      fetch: this.#fetch,
      timeoutMs: this.#timeoutMs,
    })
    this.#integrity = undefined
    return { keys, keyThumbprint: answer.keyThumbprint, versionCode: answer.versionCode }
  }

  /** Registers the device's key for receiving runtime secrets (see `generateSecretsKeys`). */
  registerSecretsKey(keys: SecretsKeys) {
    return this.request<void>('POST', '/v1/integrity/secrets-key', { publicJwk: keys.publicJwk })
  }

  /**
   * Fetches a runtime secret (an API key the app needs) and opens it: the server seals it to the device's secrets
   * key and delivers it only with a full-scope integrity token, so attest first.
   *
   * @example
   * const apiKey = new TextDecoder().decode(await client.fetchSecret('maps-api-key', secretsKeys))
   */
  async fetchSecret(name: string, keys: SecretsKeys): Promise<Uint8Array> {
    const sealed = await this.request<SealedSecret>('GET', `/v1/secrets/${encodeURIComponent(name)}`)
    return openRuntimeSecret(keys, sealed)
  }

  me() {
    return this.request<{ kind: 'staff' | 'device'; tenantId: string; [key: string]: unknown }>('GET', '/v1/me')
  }

  createCustomer(input: { externalRef: string; displayName: string; phoneNumber?: string }) {
    return this.request<Customer>('POST', '/v1/customers', input)
  }

  /** Staff: a customer, to show their name (`customers:write`). */
  getCustomer(customerId: string) {
    return this.request<Customer>('GET', `/v1/customers/${encodeURIComponent(customerId)}`)
  }

  /** Staff: asks the carrier whether this number's SIM changed within the bank's window (audited, not the number). */
  checkSimSwap(phoneNumber: string) {
    return this.request<SimSwapRisk>('POST', '/v1/risk/sim-swap', { phoneNumber })
  }

  /** Staff: the integrity policy's latest decision for each of the customer's devices that attested. */
  async deviceVerdicts(customerId: string): Promise<DeviceVerdict[]> {
    const path = `/v1/customers/${encodeURIComponent(customerId)}/device-integrity`
    return (await this.request<{ devices: DeviceVerdict[] }>('GET', path)).devices
  }

  /** Staff: a single-use code with which one device of the customer enrols; `deviceId` is listed as pending until then. */
  issueEnrolmentCode(customerId: string) {
    return this.request<{ code: string; expiresAt: string; deviceId: string }>(
      'POST',
      `/v1/customers/${encodeURIComponent(customerId)}/enrolment-codes`,
    )
  }

  listDevices(customerId: string) {
    return this.request<{ devices: Device[] }>('GET', `/v1/customers/${encodeURIComponent(customerId)}/devices`)
  }

  /** A device: its customer's devices, to find and revoke a lost one. */
  async listMyDevices(): Promise<Device[]> {
    return (await this.request<{ devices: Device[] }>('GET', '/v1/devices')).devices
  }

  /** Revokes a device: staff any of the tenant's, a device its own customer's (a lost phone, from the tablet). */
  revokeDevice(deviceId: string, reason?: string) {
    return this.request<{ deviceId: string; status: 'revoked'; conversationsLeft: number }>(
      'POST',
      `/v1/devices/${encodeURIComponent(deviceId)}/revoke`,
      reason === undefined ? {} : { reason },
    )
  }

  /**
   * Suspends a device for a while (the customer mislaid it): it is cut off at once everywhere, but keeps its
   * conversations and its local store. Staff any of the tenant's devices, a device its own customer's.
   */
  suspendDevice(deviceId: string, reason?: string) {
    return this.request<{ deviceId: string; status: 'suspended' }>(
      'POST',
      `/v1/devices/${encodeURIComponent(deviceId)}/suspend`,
      reason === undefined ? {} : { reason },
    )
  }

  /** Resumes a suspended device (found again): staff, or another active device of the same customer. */
  resumeDevice(deviceId: string, reason?: string) {
    return this.request<{ deviceId: string; status: 'active' }>(
      'POST',
      `/v1/devices/${encodeURIComponent(deviceId)}/resume`,
      reason === undefined ? {} : { reason },
    )
  }

  /** The bank, or an agent: ask a customer to confirm a payment. */
  requestConsent(input: {
    customerId: string
    conversationId?: string
    amount: { value: number; currency: string }
    payee: { name: string; account: string }
    reference: string
    expiresInSeconds?: number
  }) {
    return this.request<ConsentRequest>('POST', '/v1/consents', input)
  }

  /** A device: its customer's pending consent requests (oldest first), optionally only one conversation's. */
  async listPendingConsents(options: { conversationId?: string } = {}): Promise<ConsentRequest[]> {
    const query = options.conversationId ? `?conversationId=${encodeURIComponent(options.conversationId)}` : ''
    return (await this.request<{ consents: ConsentRequest[] }>('GET', `/v1/consents${query}`)).consents
  }

  getConsent(consentId: string) {
    return this.request<ConsentRequest>('GET', `/v1/consents/${encodeURIComponent(consentId)}`)
  }

  /** Staff: a conversation's consent requests, newest first (20 unless `limit` says otherwise, at most 100). */
  async listConsents(conversationId: string, limit?: number): Promise<ConsentRequest[]> {
    const query = new URLSearchParams({ conversationId })
    if (limit !== undefined) query.set('limit', String(limit))
    return (await this.request<{ consents: ConsentRequest[] }>('GET', `/v1/consents?${query}`)).consents
  }

  /** The keys that verify consent receipts (`/.well-known/jwks.json`): pass them to `verifyConsentReceipt`. */
  receiptKeys() {
    return this.request<JSONWebKeySet>('GET', '/.well-known/jwks.json')
  }

  /**
   * A device: approve a payment by signing exactly what was asked with the device key. Show the customer
   * `formatAmount(consent.amount)` and the payee before calling this. When the bank's step-up policy asks for more
   * (`auth/step-up-required`), ask the customer for their authenticator code and pass it as `totpCode`.
   */
  async approveConsent(
    consent: ConsentRequest,
    options: { totpCode?: string; smsCode?: string } = {},
  ): Promise<ConsentRequest> {
    if (!(this.#credentials instanceof DeviceKey)) throw new TypeError('only an enrolled device can approve a consent')
    const signature = await signConsent(this.#credentials.keys, consent)
    return this.request<ConsentRequest>('POST', `/v1/consents/${encodeURIComponent(consent.id)}/approve`, {
      signature,
      ...(options.totpCode ? { totpCode: options.totpCode } : {}),
      ...(options.smsCode ? { smsCode: options.smsCode } : {}),
    })
  }

  /**
   * A device: approve a payment with a passkey. Get the assertion with `navigator.credentials.get` and
   * `challenge: consentPasskeyChallenge(consent)` (decoded), `userVerification: 'required'`, after showing the customer
   * exactly what they approve; a passkey with user verification satisfies the policy's code step-up too.
   */
  approveConsentWithPasskey(consentId: string, assertion: PasskeyAssertion) {
    return this.request<ConsentRequest>('POST', `/v1/consents/${encodeURIComponent(consentId)}/approve/passkey`, {
      assertion,
    })
  }

  /** Passkey routes: a device's customer's under /v1/passkeys, a staff member's own under /v1/staff/passkey. */
  #passkeyPath(): string {
    return this.#credentials instanceof DeviceKey ? '/v1/passkeys' : '/v1/staff/passkey'
  }

  /** A device (for its customer) or a staff member (for themself): the options for `navigator.credentials.create`. */
  passkeyRegistrationOptions() {
    return this.request<PasskeyCreationOptions>('POST', `${this.#passkeyPath()}/registration/options`)
  }

  /**
   * Sends `credential.toJSON()` from `navigator.credentials.create`; the server keeps the public key. A device whose
   * customer already holds a factor proves it (`stepUp`): a passkey, or the authenticator app when they have no passkey.
   */
  registerPasskey(credential: PasskeyRegistrationCredential, stepUp?: FactorProof) {
    return this.request<Passkey>('POST', `${this.#passkeyPath()}/registration`, {
      credential,
      ...(stepUp ? { stepUp } : {}),
    })
  }

  /** A device: its customer's authenticator apps and passkeys, with their cooling-off. */
  async listFactors(): Promise<CustomerFactor[]> {
    return (await this.request<{ factors: CustomerFactor[] }>('GET', '/v1/factors')).factors
  }

  /** Staff: a customer's authenticator apps and passkeys (a factor still cooling off is a risk signal). */
  async customerFactors(customerId: string): Promise<CustomerFactor[]> {
    const path = `/v1/customers/${encodeURIComponent(customerId)}/factors`
    return (await this.request<{ factors: CustomerFactor[] }>('GET', path)).factors
  }

  /** A device: starts enrolling an authenticator app; the answer's URI (or QR code) goes into the app. */
  enrolTotp() {
    return this.request<{ factorId: string; otpauthUri: string; qrCodeSvg: string }>('POST', '/v1/factors/totp')
  }

  /**
   * A device: activates the enrolled authenticator app with its first code. Replacing an active one needs `stepUp`
   * (a code of the old app, or a passkey).
   */
  confirmTotp(code: string, stepUp?: FactorProof): Promise<void> {
    return this.request('POST', '/v1/factors/totp/confirm', { code, ...(stepUp ? { stepUp } : {}) })
  }

  /** A device: removes one of its customer's factors, proven by a factor at least as strong (the same one will do). */
  removeFactor(factorId: string, stepUp: FactorProof): Promise<void> {
    return this.request('POST', `/v1/factors/${encodeURIComponent(factorId)}/remove`, { stepUp })
  }

  /** Staff: removes every factor of a customer who lost them (audited with the reason; their devices are told). */
  resetFactors(customerId: string, reason: string) {
    const path = `/v1/customers/${encodeURIComponent(customerId)}/factors/reset`
    return this.request<{ removed: number }>('POST', path, { reason })
  }

  /** A device: its customer's passkeys. */
  async listPasskeys(): Promise<Passkey[]> {
    return (await this.request<{ passkeys: Passkey[] }>('GET', '/v1/passkeys')).passkeys
  }

  /** A device: the options for `navigator.credentials.get` to check its customer's passkey (a step-up). */
  passkeyAuthenticationOptions() {
    return this.request<PasskeyRequestOptions>('POST', '/v1/passkeys/authentication/options')
  }

  /** A device: sends the assertion; resolves when the server verified it, with the user verified. */
  verifyPasskey(assertion: PasskeyAssertion) {
    return this.request<{ factor: 'passkey'; passkeyId: string; userVerified: boolean; backedUp: boolean }>(
      'POST',
      '/v1/passkeys/authentication',
      { assertion },
    )
  }

  /** A device: texts its customer a one-time code (to pass as `smsCode` when the step-up policy asks for one). */
  sendSmsCode() {
    return this.request<{ expiresAt: string }>('POST', '/v1/factors/sms/send', {})
  }

  /**
   * A device: declines a payment. With a string, the customer's reason. With `fraud`, the customer says the payment is
   * not theirs ("This wasn't me"): the bank's backends hear of it by webhook (`consent.fraud_reported`), and with
   * `blockPayee` further requests to this payee for this customer are refused.
   *
   * @example
   * await client.declineConsent(consent.id, { fraud: true, blockPayee: true })
   */
  declineConsent(consentId: string, reason?: string | { reason?: string; fraud?: boolean; blockPayee?: boolean }) {
    return this.request<ConsentRequest>(
      'POST',
      `/v1/consents/${encodeURIComponent(consentId)}/decline`,
      reason === undefined ? {} : typeof reason === 'string' ? { reason } : reason,
    )
  }

  createConversation(input: { customerId: string; assignedStaffId?: string; deviceIds?: string[] }) {
    return this.request<Conversation>('POST', '/v1/conversations', input)
  }

  addMember(conversationId: string, member: { kind: 'device' | 'staff'; id: string }) {
    return this.request<void>('POST', `/v1/conversations/${encodeURIComponent(conversationId)}/members`, member)
  }

  /**
   * The caller's conversations, newest first, a page at a time: pass the last one's id as `before` for the next.
   * `scope: 'all'` lists every conversation of the bank, for staff holding conversations:all (supervisors, compliance).
   */
  async listConversations(
    page: { before?: string; limit?: number; scope?: 'member' | 'all' } = {},
  ): Promise<Conversation[]> {
    const query = new URLSearchParams()
    if (page.before !== undefined) query.set('before', page.before)
    if (page.limit !== undefined) query.set('limit', String(page.limit))
    if (page.scope !== undefined) query.set('scope', page.scope)
    const path = `/v1/conversations${query.size > 0 ? `?${query}` : ''}`
    return (await this.request<{ conversations: Conversation[] }>('GET', path)).conversations
  }

  /**
   * A supervisor (`conversations:assign`): gives the conversation to another agent, who joins it. `transfer` also
   * takes the previous assignee out of it.
   */
  assignConversation(conversationId: string, assignment: { staffId: string; mode: AssignmentMode }) {
    const path = `/v1/conversations/${encodeURIComponent(conversationId)}/assignment`
    return this.request<Conversation>('PUT', path, assignment)
  }

  /** A supervisor: the tenant's staff members, to pick whom to give a conversation to. */
  async listStaff(): Promise<StaffMember[]> {
    return (await this.request<{ staff: StaffMember[] }>('GET', '/v1/staff')).staff
  }

  /** Compliance (`archive:read`): searches the archive; audited. Follow `next` (as `after`) for more. */
  searchArchive(search: ArchiveSearch) {
    const query = new URLSearchParams()
    for (const [name, value] of Object.entries(search)) {
      if (value !== undefined) query.set(name, value instanceof Date ? value.toISOString() : String(value))
    }
    return this.request<{ records: ArchiveRecord[]; next: number | null; scanned: number }>(
      'GET',
      `/v1/archive/records?${query}`,
    )
  }

  /** Compliance: verifies the archive chain now (links, hashes, content, signed checkpoints); audited. */
  verifyArchive() {
    return this.request<ArchiveVerification>('GET', '/v1/archive/verification')
  }

  /**
   * Compliance: exports a case as a signed bundle (JSON lines, the last the signed manifest), reporting the record
   * lines received as they stream in. Throws if the bundle arrives cut short (no manifest line).
   *
   * @example
   * const bundle = await client.exportArchiveCase({ customerId }, { onProgress: (done, total) => show(done, total) })
   */
  async exportArchiveCase(
    scope: CaseScope,
    options: { onProgress?: (records: number, total: number) => void } = {},
  ): Promise<string> {
    const response = await this.#exchange('POST', '/v1/archive/exports', {
      ...scope,
      from: scope.from?.toISOString(),
      to: scope.to?.toISOString(),
    })
    const total = Number(response.headers.get('strongroom-export-records') ?? 0)
    options.onProgress?.(0, total)
    const decoder = new TextDecoder()
    let text = ''
    let lines = 0
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      const part = decoder.decode(chunk.value, { stream: true })
      text += part
      lines += part.split('\n').length - 1
      // The last line is the manifest, not a record.
      options.onProgress?.(Math.min(lines, total), total)
    }
    text += decoder.decode()
    const lastLine = text.slice(text.lastIndexOf('\n', text.length - 2) + 1)
    if (!text.endsWith('\n') || !lastLine.startsWith('{"manifest":')) {
      throw new Error('the export was cut short: no signed manifest')
    }
    return text
  }

  getConversation(conversationId: string) {
    return this.request<Conversation>('GET', `/v1/conversations/${encodeURIComponent(conversationId)}`)
  }

  /** Appends a message over HTTP. The stream's `send` does the same over the open socket. */
  async sendMessage(conversationId: string, message: OutgoingMessage): Promise<Message> {
    return this.request<Message>('POST', `/v1/conversations/${encodeURIComponent(conversationId)}/messages`, {
      clientMessageId: message.clientMessageId ?? randomId(),
      contentType: message.contentType,
      ciphertext: bytesToBase64(message.ciphertext),
      ...(message.expiresAt ? { expiresAt: message.expiresAt.toISOString() } : {}),
    })
  }

  async listMessages(conversationId: string, range: MessageRange = {}): Promise<Message[]> {
    const path = `/v1/conversations/${encodeURIComponent(conversationId)}/messages?${rangeQuery(range)}`
    return (await this.request<{ messages: Message[] }>('GET', path)).messages
  }

  /**
   * A device: redeems a pivot link for its customer. The conversation continues in the secure channel, with its
   * public history imported; a link sent to another customer is refused (`/pivot/wrong-customer`), so that a browser
   * holding another customer's device steps up instead (see `enrolWithPivotLink`).
   */
  redeemPivotLink(token: string) {
    return this.request<PivotRedemption>('POST', '/v1/pivot/redeem', { token })
  }

  /** The conversation's MLS group and its epoch, or undefined while the conversation is not end-to-end encrypted. */
  async getSecureGroup(
    conversationId: string,
  ): Promise<{ groupId: string; cipherSuite: string; epoch: number } | undefined> {
    try {
      return await this.request('GET', `/v1/conversations/${encodeURIComponent(conversationId)}/e2e/group`)
    } catch (error) {
      if (error instanceof StrongroomError && error.type.endsWith('/e2e/no-group')) return undefined
      throw error
    }
  }

  markRead(conversationId: string, readSeq: number) {
    return this.request<void>('POST', `/v1/conversations/${encodeURIComponent(conversationId)}/markers`, { readSeq })
  }

  /**
   * The public-channel messages of a conversation with their text: its thread on SMS, WhatsApp or Messenger, or the
   * history a pivot imported into a secure conversation. Text DLP masked stays masked (`masked` names what); the
   * bank's own messages carry their delivery state.
   *
   * @example
   * const [latest] = await client.listPublicMessages(message.conversationId, { after: message.seq - 1, limit: 1 })
   */
  async listPublicMessages(conversationId: string, range: MessageRange = {}): Promise<PublicMessage[]> {
    const path = `/v1/conversations/${encodeURIComponent(conversationId)}/public-messages?${rangeQuery(range)}`
    return (await this.request<{ messages: PublicMessage[] }>('GET', path)).messages
  }

  /**
   * Staff: sends a text to the customer on the conversation's public channel. Card or account data is refused
   * (`channels/sensitive-data`: move the customer to the secure channel instead); so is free text on WhatsApp more
   * than 24 hours after the customer last wrote (`channels/outside-service-window`). The same `clientMessageId`
   * never sends twice.
   */
  sendPublicMessage(conversationId: string, message: { text: string; clientMessageId?: string }) {
    return this.request<SentPublicMessage>(
      'POST',
      `/v1/conversations/${encodeURIComponent(conversationId)}/public-messages`,
      { clientMessageId: message.clientMessageId ?? randomId(), text: message.text },
    )
  }

  /**
   * Staff: invites the customer to the secure channel. The server sends a single-use link, valid for minutes, on the
   * conversation's public channel (a button on WhatsApp and Messenger); follow it with `listPivotLinks` (or the
   * stream's `onUpdate`). While a link sent earlier (by an agent or automatically) is live, that one is returned and
   * nothing is sent (`message` absent); `replace: true` sends a new one, which replaces it.
   */
  invitePivot(conversationId: string, options: { ttlSeconds?: number; replace?: boolean } = {}) {
    return this.request<{ link: PivotLink; message?: SentPublicMessage }>(
      'POST',
      `/v1/conversations/${encodeURIComponent(conversationId)}/pivot`,
      options,
    )
  }

  /**
   * A customer's device (the app or the secure chat): reports a suspicious message they received, such as a text
   * claiming to be the bank. It is queued for the bank's staff with the analysis of its links.
   *
   * @example
   * await client.reportSuspiciousMessage('Your account is locked: verify at examp1e-bank.com')
   */
  reportSuspiciousMessage(text: string): Promise<{ id: string }> {
    return this.request('POST', '/v1/suspicious-reports', { text })
  }

  /** Staff: customers' reports of suspicious messages, newest first: the open ones (the queue) or the resolved ones. */
  async listSuspiciousReports(status: SuspiciousReport['status'] = 'open'): Promise<SuspiciousReport[]> {
    const path = `/v1/suspicious-reports?${new URLSearchParams({ status })}`
    return (await this.request<{ reports: SuspiciousReport[] }>('GET', path)).reports
  }

  /** Staff: closes a report with what was found (`channels/report-resolved` if it already was). */
  resolveSuspiciousReport(reportId: string, outcome: ReportOutcome): Promise<SuspiciousReport> {
    return this.request('POST', `/v1/suspicious-reports/${encodeURIComponent(reportId)}/resolve`, { outcome })
  }

  /** Staff: the secure-channel links sent in a conversation, newest first: sent, opened, completed or expired. */
  async listPivotLinks(conversationId: string): Promise<PivotLink[]> {
    const path = `/v1/conversations/${encodeURIComponent(conversationId)}/pivot-links`
    return (await this.request<{ links: PivotLink[] }>('GET', path)).links
  }

  /**
   * Staff: which of these conversations belong to a public channel, as the conversation on the channel or as the
   * secure conversation a pivot moved it to. Conversations on no public channel, and those the caller cannot see, are
   * left out.
   */
  async conversationChannels(conversationIds: readonly string[]): Promise<ConversationChannel[]> {
    const found: ConversationChannel[] = []
    for (let i = 0; i < conversationIds.length; i += CHANNEL_LOOKUP_BATCH) {
      const ids = conversationIds.slice(i, i + CHANNEL_LOOKUP_BATCH).join(',')
      const path = `/v1/channels/conversations?${new URLSearchParams({ ids })}`
      found.push(...(await this.request<{ conversations: ConversationChannel[] }>('GET', path)).conversations)
    }
    return found
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

/** How a new device reaches the server, and the key it enrols (a fresh non-extractable one by default). */
export interface EnrolOptions {
  /** One server, or several nodes: each is tried in turn until one answers. */
  baseUrl: string | string[]
  label: string
  algorithm?: DeviceKeyAlgorithm
  keys?: DeviceKeys
  fetch?: typeof fetch
  WebSocket?: WebSocketConstructor
  /** How long to wait for a node's answer before trying the next (10 s by default); the client keeps it. */
  timeoutMs?: number
}

/**
 * Hardware evidence of the key being enrolled (`keys`), over a challenge from `POST /v1/integrity/enrolment-challenges`
 * with the same enrolment code: Android Key Attestation of the key itself (generated in the Keystore with
 * SHA-256(attestationClientData(challenge, app)) as its attestation challenge), or an App Attest attestation over
 * attestationClientData(challenge, app, { keyThumbprint }) of the key. `enrolAttestedDevice` does all of it.
 */
export type EnrolmentAttestation = { challenge: string; appId: string; appVersion: string } & (
  | {
      format: 'android-key'
      /** KeyStore.getCertificateChain of the device key: base64 DER certificates, leaf first. */
      certificateChain: string[]
    }
  | { format: 'apple-appattest'; attestationObject: string; keyId: string }
)

/** A device just enrolled, with a client acting as it. */
export interface EnrolledDevice {
  client: StrongroomClient
  device: ActiveDevice
  tenantId: string
  keys: DeviceKeys
  /** The server's wipe-command keys, fetched now: store them with the device and pass them as `remoteWipe`. */
  wipeKeys: JSONWebKeySet | undefined
}

/**
 * Enrols this device with a single-use code that the bank issued for the customer: makes a key pair (non-extractable
 * private key), registers its public half, and returns a client acting as that device.
 *
 * @example
 * const { client, device, keys } = await enrolDevice({ baseUrl, enrolmentCode: 'ABCD-EFGH-JKMN-PQRS', label: 'Phone' })
 */
export async function enrolDevice(
  options: EnrolOptions & { enrolmentCode: string; attestation?: EnrolmentAttestation },
): Promise<EnrolledDevice> {
  const { enrolled } = await enrolWithProof(options, '/v1/devices', {
    enrolmentCode: options.enrolmentCode,
    label: options.label,
    ...(options.attestation ? { attestation: options.attestation } : {}),
  })
  return enrolled
}

/**
 * Posts an enrolment (`body`) with a DPoP proof of the device key to `path`, and builds the device's client from the
 * answer (`{ device, tenantId, token }`, and whatever else the route returns, given back as `answer`).
 */
export async function enrolWithProof<T extends object>(
  options: EnrolOptions,
  path: string,
  body: unknown,
): Promise<{ enrolled: EnrolledDevice; answer: T }> {
  const keys = options.keys ?? (await generateDeviceKeys(options.algorithm))
  const baseUrls = (Array.isArray(options.baseUrl) ? options.baseUrl : [options.baseUrl]).map((u) =>
    u.replace(/\/+$/, ''),
  )
  const doFetch = options.fetch ?? platformFetch
  // Each node in turn until one answers, as every other request does.
  let response: Response | undefined
  let baseUrl = baseUrls[0] as string
  for (const [index, url] of baseUrls.entries()) {
    baseUrl = url
    const htu = `${url}${path}`
    try {
      response = await doFetch(htu, {
        method: 'POST',
        headers: { 'content-type': 'application/json', dpop: await createDpopProof(keys, { htm: 'POST', htu }) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      })
      break
    } catch (error) {
      if (index === baseUrls.length - 1) throw error
    }
  }
  if (!response) throw new TypeError('baseUrl must name at least one server')
  const answer = await response.json()
  if (!response.ok) throw new StrongroomError(answer)
  const credentials = new DeviceKey(keys, {
    accessToken: answer.token.accessToken,
    expiresIn: answer.token.expiresIn,
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
  })
  const client = new StrongroomClient({
    baseUrl: [baseUrl, ...baseUrls.filter((url) => url !== baseUrl)],
    credentials,
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.WebSocket ? { WebSocket: options.WebSocket } : {}),
  })
  const wipeKeys = await fetchWipeKeys(baseUrl as string, doFetch).catch(() => undefined)
  return { enrolled: { client, device: answer.device, tenantId: answer.tenantId, keys, wipeKeys }, answer: answer as T }
}
