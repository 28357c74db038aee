import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { BackendClient, ClientAssertion, StrongroomError } from '@strongroom/sdk'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import * as oauth from 'oauth4webapi'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'

describe('bank backends as OAuth clients (private_key_jwt)', () => {
  let server: TestServer
  let bank: TestBank
  let clientId: string
  let tokenEndpoint: string
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    const response = await fetch(`${server.url}/v1/api-clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bank.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'payments backend',
        jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] },
        scopes: ['consents:write'],
      }),
    })
    assert.equal(response.status, 201)
    ;({ clientId, tokenEndpoint } = await response.json())
    assert.equal(tokenEndpoint, `${server.url}/v1/oauth/token`)
  })
  after(() => server.stop())

  /** A client assertion, correct unless a test changes something. */
  async function assertion(changes: { key?: typeof privateKey; aud?: string; exp?: string; jti?: string } = {}) {
    return new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(changes.aud ?? tokenEndpoint)
      .setJti(changes.jti ?? crypto.randomUUID())
      .setIssuedAt()
      .setExpirationTime(changes.exp ?? '60s')
      .sign(changes.key ?? privateKey)
  }

  async function token(form: Record<string, string>) {
    const response = await fetch(tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    })
    return { status: response.status, body: await response.json(), cacheControl: response.headers.get('cache-control') }
  }
  const grant = (clientAssertion: string, extra: Record<string, string> = {}) => ({
    grant_type: 'client_credentials',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: clientAssertion,
    ...extra,
  })

  test('the backend gets a token with its signed assertion and asks a customer to confirm a payment', async () => {
    const backend = new BackendClient({
      baseUrl: server.url,
      credentials: new ClientAssertion({ clientId, privateKey, algorithm: 'ES256', keyId: 'k1', tokenEndpoint }),
    })
    assert.deepEqual(await backend.me(), {
      kind: 'client',
      tenantId: bank.tenantId,
      clientId,
      scopes: ['consents:write'],
    })
    const consent = await backend.requestConsent({
      customerId: bank.customerId,
      amount: { value: 990, currency: 'GBP' },
      payee: { name: 'Utility Co', account: 'GB33BUKB20201555555555' },
      reference: 'Bill 7',
    })
    assert.equal((await backend.getConsent(consent.id)).status, 'pending')
    // It is not a conversation member and cannot act as staff beyond its scopes.
    await assert.rejects(
      backend.request('GET', '/v1/conversations'),
      (e) => e instanceof StrongroomError && e.status === 403,
    )
    await assert.rejects(
      backend.createCustomer({ externalRef: 'X', displayName: 'Y' }),
      (e) => e instanceof StrongroomError && e.status === 403,
    )
  })

  test('the token answer is a short-lived bearer token, not cached by proxies', async () => {
    const result = await token(grant(await assertion()))
    assert.equal(result.status, 200)
    assert.equal(result.cacheControl, 'no-store')
    assert.match(result.body.access_token, /^srb_/)
    assert.deepEqual(
      [result.body.token_type, result.body.expires_in, result.body.scope],
      ['Bearer', 300, 'consents:write'],
    )
  })

  test('forged, replayed, expired, long-lived and misaddressed assertions are refused as RFC 6749 errors', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
    const used = await assertion()
    assert.equal((await token(grant(used))).status, 200)
    const cases: [string, Record<string, string>, number, string][] = [
      ['signed by another key', grant(await assertion({ key: other })), 401, 'invalid_client'],
      ['replayed', grant(used), 401, 'invalid_client'],
      ['expired', grant(await assertion({ exp: '-120s' })), 401, 'invalid_client'],
      ['valid for an hour', grant(await assertion({ exp: '1h' })), 401, 'invalid_client'],
      ['for another audience', grant(await assertion({ aud: 'https://elsewhere/token' })), 401, 'invalid_client'],
      ['not a JWT', grant('garbage'), 401, 'invalid_client'],
      ['no assertion', { grant_type: 'client_credentials' }, 401, 'invalid_client'],
      ['another grant', { ...grant(await assertion()), grant_type: 'password' }, 400, 'unsupported_grant_type'],
      ['a scope not granted', grant(await assertion(), { scope: 'consents:write staff:admin' }), 400, 'invalid_scope'],
    ]
    for (const [name, form, status, error] of cases) {
      const result = await token(form)
      assert.equal(result.status, status, name)
      assert.equal(result.body.error, error, name)
      assert.equal(result.body.access_token, undefined, name)
    }
  })

  test("a form the schema refuses (a field sent twice, one too long) is invalid_request, in OAuth's format, not the last value", async () => {
    const valid = new URLSearchParams(grant(await assertion()))
    const twice = new URLSearchParams([['grant_type', 'password'], ...valid])
    const tooLong = new URLSearchParams({ ...grant(await assertion()), scope: 'x'.repeat(501) })
    for (const form of [twice, tooLong]) {
      const response = await fetch(tokenEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      })
      assert.equal(response.status, 400)
      assert.match(response.headers.get('content-type') ?? '', /^application\/json/)
      assert.deepEqual(await response.json(), {
        error: 'invalid_request',
        error_description: 'malformed token request',
      })
    }
  })

  test('issue 15: oauth4webapi, an independent client, gets a token with private_key_jwt (aud = the issuer)', async () => {
    const issuer = new URL(server.url)
    const insecure = { [oauth.allowInsecureRequests]: true }
    const as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
    )
    assert.equal(as.token_endpoint, tokenEndpoint)
    // An Ed25519 key, which oauth4webapi signs with under RFC 9864's name (alg Ed25519).
    const keys = await generateKeyPair('Ed25519')
    const registered = await fetch(`${server.url}/v1/api-clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bank.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'oauth4webapi backend',
        jwks: { keys: [{ ...(await exportJWK(keys.publicKey)), kid: 'ed1' }] },
        scopes: ['consents:write'],
      }),
    })
    assert.equal(registered.status, 201)
    const client: oauth.Client = { client_id: ((await registered.json()) as { clientId: string }).clientId }
    const authentication = oauth.PrivateKeyJwt({ key: keys.privateKey, kid: 'ed1' })
    const tokens = await oauth.processClientCredentialsResponse(
      as,
      client,
      await oauth.clientCredentialsGrantRequest(as, client, authentication, { scope: 'consents:write' }, insecure),
    )
    assert.equal(tokens.token_type, 'bearer')
    const me = await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } })
    assert.equal(((await me.json()) as { clientId: string }).clientId, client.client_id)
    // The issuer and the token endpoint are the audiences accepted; another server's issuer is not.
    assert.equal((await token(grant(await assertion({ aud: server.url })))).status, 200)
    assert.equal((await token(grant(await assertion({ aud: 'https://other.example' })))).status, 401)
  })

  test('a JWKS with a private key, or only agents, cannot register a client', async () => {
    const register = (authorization: string, jwk: object) =>
      fetch(`${server.url}/v1/api-clients`, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'x', jwks: { keys: [jwk] }, scopes: ['consents:write'] }),
      })
    const withPrivate = await register(`Bearer ${bank.adminToken}`, await exportJWK(privateKey))
    assert.equal(withPrivate.status, 400)
    const byAgent = await register(`Bearer ${bank.agentToken}`, await exportJWK(publicKey))
    assert.equal(byAgent.status, 403)
  })
})

describe('the audience of a client assertion is the configured public URL, never the Host header', () => {
  const PUBLIC_URL = 'https://chat.bank.example'
  let server: TestServer
  let clientId: string
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })

  before(async () => {
    server = await startTestServer({ publicUrl: PUBLIC_URL })
    const bank = await createTestBank(server)
    // Even the registration, sent with a forged Host, names the configured token endpoint.
    const response = await server.app.inject({
      method: 'POST',
      url: '/v1/api-clients',
      headers: { host: 'attacker.example', authorization: `Bearer ${bank.adminToken}` },
      payload: {
        name: 'payments backend',
        jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] },
        scopes: ['consents:write'],
      },
    })
    assert.equal(response.statusCode, 201)
    const body = response.json()
    assert.equal(body.tokenEndpoint, `${PUBLIC_URL}/v1/oauth/token`)
    clientId = body.clientId
  })
  after(() => server.stop())

  /** A token request for an assertion naming `aud`, sent with a Host header the sender chose. */
  async function tokenFor(aud: string, host: string) {
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(aud)
      .setJti(crypto.randomUUID())
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(privateKey)
    const response = await server.app.inject({
      method: 'POST',
      url: '/v1/oauth/token',
      headers: { host, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      }).toString(),
    })
    return { status: response.statusCode, error: response.json().error }
  }

  test('an assertion for a forged Host is refused; one for the configured URL is accepted, whatever the Host', async () => {
    const forged = 'attacker.example'
    assert.deepEqual(await tokenFor(`http://${forged}/v1/oauth/token`, forged), {
      status: 401,
      error: 'invalid_client',
    })
    assert.deepEqual(await tokenFor(`http://${forged}`, forged), { status: 401, error: 'invalid_client' })
    assert.deepEqual(await tokenFor(`${PUBLIC_URL}/v1/oauth/token`, forged), { status: 200, error: undefined })
    assert.deepEqual(await tokenFor(PUBLIC_URL, forged), { status: 200, error: undefined })
  })

  test('the metadata names the configured issuer and token endpoint, whatever the Host', async () => {
    const response = await server.app.inject({
      url: '/.well-known/oauth-authorization-server',
      headers: { host: 'attacker.example' },
    })
    assert.equal(response.json().issuer, PUBLIC_URL)
    assert.equal(response.json().token_endpoint, `${PUBLIC_URL}/v1/oauth/token`)
  })
})
