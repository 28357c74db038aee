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
}

/** A source of the bearer token an API call carries; told when the API refused the one it gave. */
export interface AccessTokenSource {
  token(): Promise<string>
  refused(token: string): void
}

/** Fetched again this long before the operator says it expires, so a call never goes out with a token about to lapse. */
const EARLY_RENEWAL_MS = 30_000
const TIMEOUT_MS = 3000

/**
 * Access tokens from the operator's token endpoint by the client credentials grant (RFC 6749 §4.4, client_secret_basic)
 * through `oauth4webapi`: one token is shared by every call until shortly before it expires, one request at a time
 * fetches the next, and a token the API refuses (401) is dropped so the next call fetches another. Any failure to get
 * one throws: the caller fails closed.
 */
export function operatorTokenSource(
  config: OperatorOAuth,
  options: { fetch?: typeof fetch | undefined } = {},
): AccessTokenSource {
  const url = new URL(config.tokenUrl)
  const server: oauth.AuthorizationServer = { issuer: url.origin, token_endpoint: url.href }
  const client: oauth.Client = { client_id: config.clientId }
  const authentication = oauth.ClientSecretBasic(config.clientSecret)
  let current: { token: string; renewAt: number } | undefined
  let pending: Promise<string> | undefined

  async function fetchToken(): Promise<string> {
    const parameters = new URLSearchParams(config.scope ? { scope: config.scope } : {})
    const response = await oauth.clientCredentialsGrantRequest(server, client, authentication, parameters, {
      signal: AbortSignal.timeout(TIMEOUT_MS),
      // Plain HTTP only where the configuration allows it (dev and tests); production insists on https.
      [oauth.allowInsecureRequests]: url.protocol === 'http:',
      ...(options.fetch ? { [oauth.customFetch]: options.fetch } : {}),
    })
    const result = await oauth.processClientCredentialsResponse(server, client, response)
    const lifetimeMs = (result.expires_in ?? 300) * 1000
    current = { token: result.access_token, renewAt: Date.now() + Math.max(lifetimeMs - EARLY_RENEWAL_MS, 0) }
    return result.access_token
  }

  return {
    async token() {
      if (current && Date.now() < current.renewAt) return current.token
      pending ??= fetchToken().finally(() => {
        pending = undefined
      })
      return pending
    },
    refused(token) {
      if (current?.token === token) current = undefined
    },
  }
}

/** The carrier's OAuth client from the configuration (its secret read from its file), or undefined without one. */
export function carrierOAuth(config: {
  simSwapTokenUrl?: string | undefined
  simSwapClientId?: string | undefined
  simSwapClientSecretFile?: string | undefined
  simSwapScope?: string | undefined
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
  return { tokenUrl: simSwapTokenUrl, clientId: simSwapClientId, clientSecret, scope: config.simSwapScope }
}
