import { readFileSync } from 'node:fs'
import * as oauth from 'oauth4webapi'
import { ConfigError } from '../platform/config.ts'

/** How Strongroom signs in to the carrier's OAuth 2.0 authorization server to call its CAMARA APIs. */
export interface OperatorOAuth {
  /** The operator's token endpoint. */
  tokenUrl: string
  clientId: string
  clientSecret: string
  /** Space-separated scopes to ask for (the operator's names for the SIM Swap API's purposes). */
  scope?: string | undefined
  /**
   * The operator's backchannel authentication endpoint, for operators that require CAMARA's CIBA flow: a token is then
   * asked for each phone number (`login_hint=tel:+…`) and obtained by polling the token endpoint with the
   * `urn:openid:params:grant-type:ciba` grant. Without it, one client credentials token serves every number.
   */
  bcAuthorizeUrl?: string | undefined
}

/** A source of the bearer token an API call about a phone number carries; told when the API refused the one it gave. */
export interface AccessTokenSource {
  token(phoneNumber: string): Promise<string>
  refused(token: string): void
}

/** Fetched again this long before the operator says it expires, so a call never goes out with a token about to lapse. */
const EARLY_RENEWAL_MS = 30_000
const TIMEOUT_MS = 3000
/** How long a CIBA request may stay pending before the check fails closed (the caller is waiting on it). */
const CIBA_WAIT_MS = 10_000
/** Tokens kept for this many phone numbers at most (CIBA); the oldest is dropped first. */
const MAX_CACHED = 10_000

/**
 * Tokens by the phone number they were issued for (one shared token under client credentials): each is used until
 * shortly before it expires, one request at a time fetches the next for a number, and a token the API refuses (401)
 * is dropped so the next call fetches another. Any failure to get one throws: the caller fails closed.
 */
function cachedTokens(fetchToken: (subject: string) => Promise<oauth.TokenEndpointResponse>): AccessTokenSource {
  const current = new Map<string, { token: string; renewAt: number }>()
  const pending = new Map<string, Promise<string>>()
  async function renew(subject: string): Promise<string> {
    const result = await fetchToken(subject)
    const lifetimeMs = (result.expires_in ?? 300) * 1000
    current.delete(subject)
    if (current.size >= MAX_CACHED) current.delete(current.keys().next().value as string)
    current.set(subject, {
      token: result.access_token,
      renewAt: Date.now() + Math.max(lifetimeMs - EARLY_RENEWAL_MS, 0),
    })
    return result.access_token
  }
  return {
    async token(subject) {
      const held = current.get(subject)
      if (held && Date.now() < held.renewAt) return held.token
      let next = pending.get(subject)
      if (!next) {
        next = renew(subject).finally(() => pending.delete(subject))
        pending.set(subject, next)
      }
      return next
    },
    refused(token) {
      for (const [subject, held] of current) if (held.token === token) current.delete(subject)
    },
  }
}

/**
 * Access tokens from the operator's OAuth 2.0 authorization server through `oauth4webapi` (client_secret_basic): by
 * the client credentials grant (RFC 6749 §4.4), one for every call; or, where the operator requires it, by CAMARA's
 * CIBA flow (OpenID Connect CIBA, poll mode): a backchannel authentication request naming the phone number, then the
 * token endpoint polled with the auth_req_id until the operator grants it, within ten seconds.
 */
export function operatorTokenSource(
  config: OperatorOAuth,
  options: { fetch?: typeof fetch | undefined } = {},
): AccessTokenSource {
  const url = new URL(config.tokenUrl)
  const server: oauth.AuthorizationServer = {
    issuer: url.origin,
    token_endpoint: url.href,
    ...(config.bcAuthorizeUrl ? { backchannel_authentication_endpoint: config.bcAuthorizeUrl } : {}),
  }
  const client: oauth.Client = { client_id: config.clientId }
  const authentication = oauth.ClientSecretBasic(config.clientSecret)
  const requestOptions = () => ({
    signal: AbortSignal.timeout(TIMEOUT_MS),
    // Plain HTTP only where the configuration allows it (dev and tests); production insists on https.
    [oauth.allowInsecureRequests]: url.protocol === 'http:',
    ...(options.fetch ? { [oauth.customFetch]: options.fetch } : {}),
  })
  const scope: Record<string, string> = config.scope ? { scope: config.scope } : {}

  async function clientCredentials(): Promise<oauth.TokenEndpointResponse> {
    const parameters = new URLSearchParams(scope)
    const response = await oauth.clientCredentialsGrantRequest(
      server,
      client,
      authentication,
      parameters,
      requestOptions(),
    )
    return oauth.processClientCredentialsResponse(server, client, response)
  }

  async function ciba(phoneNumber: string): Promise<oauth.TokenEndpointResponse> {
    const parameters = new URLSearchParams({ ...scope, login_hint: `tel:${phoneNumber}` })
    const started = await oauth.processBackchannelAuthenticationResponse(
      server,
      client,
      await oauth.backchannelAuthenticationRequest(server, client, authentication, parameters, requestOptions()),
    )
    const deadline = Date.now() + Math.min(started.expires_in * 1000, CIBA_WAIT_MS)
    let intervalMs = (started.interval ?? 5) * 1000
    for (;;) {
      if (Date.now() + intervalMs > deadline) throw new Error('the operator did not grant the CIBA request in time')
      await new Promise((resolve) => setTimeout(resolve, intervalMs))
      const response = await oauth.backchannelAuthenticationGrantRequest(
        server,
        client,
        authentication,
        started.auth_req_id,
        requestOptions(),
      )
      try {
        return await oauth.processBackchannelAuthenticationGrantResponse(server, client, response)
      } catch (error) {
        if (!(error instanceof oauth.ResponseBodyError)) throw error
        if (error.error === 'slow_down') intervalMs += 5000
        else if (error.error !== 'authorization_pending') throw error
      }
    }
  }

  return cachedTokens(config.bcAuthorizeUrl ? ciba : clientCredentials)
}

/** The carrier's OAuth client from the configuration (its secret read from its file), or undefined without one. */
export function carrierOAuth(config: {
  simSwapTokenUrl?: string | undefined
  simSwapClientId?: string | undefined
  simSwapClientSecretFile?: string | undefined
  simSwapScope?: string | undefined
  simSwapBcAuthorizeUrl?: string | undefined
}): OperatorOAuth | undefined {
  const { simSwapTokenUrl, simSwapClientId, simSwapClientSecretFile } = config
  if (!simSwapTokenUrl || !simSwapClientId || !simSwapClientSecretFile) return undefined
  let clientSecret: string
  try {
    clientSecret = readFileSync(simSwapClientSecretFile, 'utf8').trim()
  } catch {
    throw new ConfigError('STRONGROOM_SIM_SWAP_CLIENT_SECRET_FILE', 'cannot be read')
  }
  if (!clientSecret) throw new ConfigError('STRONGROOM_SIM_SWAP_CLIENT_SECRET_FILE', 'is empty')
  return {
    tokenUrl: simSwapTokenUrl,
    clientId: simSwapClientId,
    clientSecret,
    scope: config.simSwapScope,
    bcAuthorizeUrl: config.simSwapBcAuthorizeUrl,
  }
}
