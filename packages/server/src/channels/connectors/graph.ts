import { createHmac } from 'node:crypto'
import { sendWithRetries, type TransportOptions } from './retry.ts'

/** How WhatsApp and Messenger connectors reach the Meta Graph API. */
export interface GraphConfig {
  accessToken: string
  appSecret: string
  /** A Graph API version such as `v23.0`; versions expire after about two years, so it is configuration. */
  apiVersion: string
  /** https://graph.facebook.com unless set (tests point it at a local fake). */
  baseUrl?: string
}

const DEFAULT_BASE_URL = 'https://graph.facebook.com'

/**
 * POSTs JSON to `{baseUrl}/{version}/{path}` with the token as a bearer header (never in the URL, where it would be
 * logged) and appsecret_proof, which Meta requires when the app enables "Require App Secret" so that a leaked token
 * alone cannot send. The Graph API takes no idempotency key.
 */
export function postToGraph(
  config: GraphConfig,
  path: string,
  payload: unknown,
  transport: TransportOptions,
): Promise<unknown> {
  const baseUrl = (config.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, '')
  const proof = createHmac('sha256', config.appSecret).update(config.accessToken).digest('hex')
  return sendWithRetries(
    {
      url: `${baseUrl}/${config.apiVersion}/${path}?appsecret_proof=${proof}`,
      headers: { authorization: `Bearer ${config.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(payload),
    },
    transport,
  )
}
