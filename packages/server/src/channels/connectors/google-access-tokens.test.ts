import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { after, describe, test } from 'node:test'
import { decodeProtectedHeader, importSPKI, jwtVerify } from 'jose'
import { ProviderRejectedError } from './errors.ts'
import { type FakeProvider, startFakeProvider } from './fake-provider.ts'
import { GoogleAccessTokens, parseServiceAccountKey, RBM_SCOPE } from './google-access-tokens.ts'
import { rbmConnector } from './rbm.ts'

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
const PRIVATE_PEM = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
const PUBLIC_PEM = publicKey.export({ type: 'spki', format: 'pem' }).toString()
const EMAIL = 'rbm-agent@bank-project.iam.gserviceaccount.com'
const PHONE = '+447700900123'

const providers: FakeProvider[] = []
after(() => Promise.all(providers.map((p) => p.close())))

/** A fake token endpoint (Google's https://oauth2.googleapis.com/token), and the JSON key that points at it. */
async function tokenEndpoint(replies: Parameters<typeof startFakeProvider>[0]) {
  const provider = await startFakeProvider(replies)
  providers.push(provider)
  const key = JSON.stringify({
    type: 'service_account',
    client_email: EMAIL,
    private_key: PRIVATE_PEM,
    private_key_id: 'key-1',
    token_uri: `${provider.baseUrl}/token`,
  })
  return { provider, key: parseServiceAccountKey(key) }
}

const granted = (token: string, expiresIn = 3600) => ({
  status: 200,
  json: { access_token: token, expires_in: expiresIn, token_type: 'Bearer' },
})

describe('Google service account access tokens (RFC 7523 JWT bearer grant)', () => {
  test('the assertion is an RS256 JWT of the account, for the token endpoint and the RBM scope, and verifies', async () => {
    const { provider, key } = await tokenEndpoint([granted('ya29.first')])
    const tokens = new GoogleAccessTokens()
    assert.equal(await tokens.get(key, RBM_SCOPE), 'ya29.first')
    const [request] = provider.requests
    assert.ok(request)
    assert.equal(request.method, 'POST')
    assert.equal(request.path, '/token')
    assert.equal(request.headers['content-type'], 'application/x-www-form-urlencoded')
    const form = new URLSearchParams(request.body)
    assert.equal(form.get('grant_type'), 'urn:ietf:params:oauth:grant-type:jwt-bearer')
    const assertion = form.get('assertion') ?? ''
    assert.deepEqual(decodeProtectedHeader(assertion), { alg: 'RS256', typ: 'JWT', kid: 'key-1' })
    const { payload } = await jwtVerify(assertion, await importSPKI(PUBLIC_PEM, 'RS256'), {
      issuer: EMAIL,
      audience: `${provider.baseUrl}/token`,
    })
    assert.equal(payload.scope, RBM_SCOPE)
    assert.equal((payload.exp as number) - (payload.iat as number), 3600)
  })

  test('a token is kept until a minute before it expires, shared by concurrent sends, then exchanged again', async () => {
    const { provider, key } = await tokenEndpoint([granted('ya29.first', 3600), granted('ya29.second', 3600)])
    let now = Date.parse('2026-12-06T12:00:00Z')
    const tokens = new GoogleAccessTokens({ now: () => now })
    const first = await Promise.all([tokens.get(key, RBM_SCOPE), tokens.get(key, RBM_SCOPE)])
    assert.deepEqual(first, ['ya29.first', 'ya29.first'])
    now += 3500_000
    assert.equal(await tokens.get(key, RBM_SCOPE), 'ya29.first')
    assert.equal(provider.requests.length, 1)
    now += 60_000
    assert.equal(await tokens.get(key, RBM_SCOPE), 'ya29.second')
    assert.equal(provider.requests.length, 2)
  })

  test('a refused assertion is a rejection, and nothing is cached: the next send tries again', async () => {
    const { provider, key } = await tokenEndpoint([
      { status: 400, json: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' } },
      granted('ya29.after'),
    ])
    const tokens = new GoogleAccessTokens()
    await assert.rejects(tokens.get(key, RBM_SCOPE), ProviderRejectedError)
    assert.equal(await tokens.get(key, RBM_SCOPE), 'ya29.after')
    assert.equal(provider.requests.length, 2)
  })

  test('an RBM send carries the exchanged token as its bearer', async () => {
    const { key } = await tokenEndpoint([granted('ya29.for-rbm')])
    const rbm = await startFakeProvider([
      { status: 200, json: { name: `phones/${PHONE}/agentMessages/k1`, sendTime: '2026-12-06T12:00:00Z' } },
    ])
    providers.push(rbm)
    const tokens = new GoogleAccessTokens()
    const connector = rbmConnector({
      agentId: 'bank-agent@rbm.goog',
      clientToken: 'test-rbm-client-token',
      accessToken: () => tokens.get(key, RBM_SCOPE),
      baseUrl: rbm.baseUrl,
    })
    await connector.send({ to: PHONE, text: 'Hello', idempotencyKey: 'k1' })
    assert.equal(rbm.requests[0]?.headers.authorization, 'Bearer ya29.for-rbm')
  })

  test('a key without its fields, or with a token_uri that is not https, is refused when configured', () => {
    assert.throws(() => parseServiceAccountKey('{"client_email":"x"}'), TypeError)
    assert.throws(() => parseServiceAccountKey('not json'), TypeError)
    const key = { client_email: EMAIL, private_key: PRIVATE_PEM, token_uri: 'http://attacker.example/token' }
    assert.throws(() => parseServiceAccountKey(JSON.stringify(key)), /https/)
  })
})
