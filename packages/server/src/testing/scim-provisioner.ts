import assert from 'node:assert/strict'
import { ClientAssertion } from '@strongroom/sdk'
import { exportJWK, generateKeyPair } from 'jose'
import type { TestBank, TestServer } from './harness.ts'

export const SCIM_MEDIA_TYPE = 'application/scim+json'
/** The SCIM schema URNs (RFC 7643, RFC 7644) a test sends and expects. */
export const SCIM_SCHEMAS = {
  user: 'urn:ietf:params:scim:schemas:core:2.0:User',
  group: 'urn:ietf:params:scim:schemas:core:2.0:Group',
  patch: 'urn:ietf:params:scim:api:messages:2.0:PatchOp',
  error: 'urn:ietf:params:scim:api:messages:2.0:Error',
} as const

export interface ScimAnswer {
  status: number
  type: string | null
  location: string | null
  /** The parsed body, as JSON.parse gives it; `{}` when there is none (a 204). */
  body: ReturnType<typeof JSON.parse>
}

/** The bank's identity provider as a SCIM client, with the staff:provision token it got. */
export interface ScimProvisioner {
  token: string
  /** A request to `/scim/v2<path>`, with the provider's token or another one (`token`). */
  scim(method: string, path: string, body?: unknown, token?: string): Promise<ScimAnswer>
}

/**
 * Registers the bank's identity provider as an API client holding staff:provision (by an admin of `bank`) and takes a
 * token for it with client credentials (the SDK's signed client assertion), as a provider set up for SCIM does.
 */
export async function connectScimProvisioner(server: TestServer, bank: TestBank): Promise<ScimProvisioner> {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const registered = await fetch(`${server.url}/v1/api-clients`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bank.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      name: 'identity provider',
      jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'idp', alg: 'ES256' }] },
      scopes: ['staff:provision'],
    }),
  })
  assert.equal(registered.status, 201)
  const { clientId, tokenEndpoint } = await registered.json()
  const credentials = new ClientAssertion({ clientId, privateKey, algorithm: 'ES256', keyId: 'idp', tokenEndpoint })
  const token = (await credentials.authorize()).authorization.replace(/^Bearer /, '')
  return {
    token,
    async scim(method, path, body, as = token) {
      const answer = await fetch(`${server.url}/scim/v2${path}`, {
        method,
        headers: { authorization: `Bearer ${as}`, ...(body === undefined ? {} : { 'content-type': SCIM_MEDIA_TYPE }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      const text = await answer.text()
      return {
        status: answer.status,
        type: answer.headers.get('content-type'),
        location: answer.headers.get('location'),
        body: text ? JSON.parse(text) : {},
      }
    },
  }
}

/** Asserts an answer is a SCIM error (RFC 7644 §3.12) of this status and scimType, with a detail. */
export function assertScimError(answer: ScimAnswer, status: number, scimType?: string): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body))
  assert.equal(answer.type, `${SCIM_MEDIA_TYPE}; charset=utf-8`)
  assert.deepEqual(answer.body.schemas, [SCIM_SCHEMAS.error])
  assert.equal(answer.body.status, String(status))
  assert.equal(answer.body.scimType, scimType)
  assert.equal(typeof answer.body.detail, 'string')
}
