/**
 * Staff sign-in through the bank's OpenID provider (issue 15): against a real provider (panva's `oidc-provider`) with
 * a client secret and with private_key_jwt, and against a forging one for the ID tokens a real provider never sends.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { startScriptedIdp } from '../testing/scripted-idp.ts'
import { startTestIdp, type TestIdp } from '../testing/test-idp.ts'
import { createStaff } from './staff.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'
const SECRET = 'test-client-secret-that-is-long-enough-1234'
const ROLE_MAPPING = { roles: { 'Strongroom.Agent': 'agent', 'Strongroom.Supervisor': 'supervisor', admin: 'admin' } }

async function call(server: TestServer, token: string | undefined, method: string, path: string, body?: unknown) {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.text()
  return { status: response.status, body: text ? JSON.parse(text) : undefined }
}

/** A browser as far as redirects and the provider's cookies go: follows them until the console is reached. */
class Browser {
  readonly #cookies = new Map<string, string>()
  /** GETs (or POSTs a form to) the URL, then follows redirects; stops at the console, or at `stop` if it says so. */
  async go(url: string, options: { form?: Record<string, string>; stop?: (url: URL) => boolean } = {}) {
    let next = new URL(url)
    let form = options.form
    for (let hops = 0; hops < 12; hops++) {
      if (next.pathname.startsWith('/console/') || options.stop?.(next)) return next
      const response = await fetch(next, {
        method: form ? 'POST' : 'GET',
        redirect: 'manual',
        headers: {
          cookie: [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; '),
          ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        },
        body: form ? new URLSearchParams(form).toString() : undefined,
      })
      for (const cookie of response.headers.getSetCookie()) {
        const [pair] = cookie.split(';')
        const [name, ...value] = (pair as string).split('=')
        this.#cookies.set(name as string, value.join('='))
      }
      form = undefined
      const location = response.headers.get('location')
      if (!location) {
        const page = await response.text()
        const action = /<form method="post" action="([^"]+)"/.exec(page)
        assert.ok(action, `no redirect and no login form at ${next.href}: ${response.status}`)
        next = new URL(action[1] as string, next)
        form = { login: this.username }
        continue
      }
      await response.body?.cancel()
      next = new URL(location, next)
    }
    assert.fail('too many redirects')
  }
  /** GETs a page with the browser's cookies (the provider's logout confirmation). */
  async page(url: string): Promise<string> {
    const cookie = [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    return (await fetch(url, { headers: { cookie } })).text()
  }
  constructor(readonly username: string) {}
}

const fragmentOf = (url: URL) => new URLSearchParams(url.hash.slice(1))

// One server for the file: both providers' banks live on it.
let server: TestServer
before(async () => {
  server = await startTestServer()
})
after(() => server.stop())

describe('staff sign in through the bank’s OpenID provider', () => {
  let bank: TestBank
  let idp: TestIdp
  let keyBank: TestBank
  let clientJwk: JWK

  before(async () => {
    bank = await createTestBank(server)
    keyBank = await createTestBank(server, 'Key Bank')
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
    clientJwk = { ...(await exportJWK(privateKey)), alg: 'ES256', kid: 'bank-rp-1' }
    const redirect = `${server.url}/sign-in/oidc/callback`
    idp = await startTestIdp([
      {
        client_id: 'strongroom',
        client_secret: SECRET,
        redirect_uris: [redirect],
        post_logout_redirect_uris: [`${server.url}/console/?tenant=${bank.tenantId}`],
        token_endpoint_auth_method: 'client_secret_basic',
        backchannel_logout_uri: `${server.url}/v1/staff-sign-in/oidc/back-channel-logout?tenant=${bank.tenantId}`,
        backchannel_logout_session_required: true,
      },
      {
        client_id: 'strongroom-key',
        redirect_uris: [redirect],
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        jwks: { keys: [{ ...(await exportJWK(publicKey)), alg: 'ES256', kid: 'bank-rp-1', use: 'sig' }] },
      },
    ])
    idp.users.set('alice', { sub: 'okta-alice', username: 'alice', roles: ['Strongroom.Supervisor', 'Other'] })
    idp.users.set('bob', { sub: 'okta-bob', username: 'bob', roles: ['Unmapped'] })
    for (const [b, clientId, auth] of [
      [bank, 'strongroom', { authMethod: 'client_secret_basic', clientSecret: SECRET }],
      [keyBank, 'strongroom-key', { authMethod: 'private_key_jwt', privateKeyJwk: clientJwk }],
    ] as const) {
      assert.equal((await call(server, b.adminToken, 'PUT', '/v1/policies/scim-roles', ROLE_MAPPING)).status, 200)
      const configured = await call(server, b.adminToken, 'PUT', '/v1/staff-sign-in/oidc', {
        issuer: idp.issuer,
        clientId,
        ...auth,
      })
      assert.equal(configured.status, 200, JSON.stringify(configured.body))
    }
  })
  after(() => idp.close())

  const authorize = (tenantId: string) => `${server.url}/sign-in/oidc?tenant=${tenantId}`

  async function signIn(tenantId: string, username: string) {
    const landed = await new Browser(username).go(authorize(tenantId))
    const handoff = fragmentOf(landed).get('oidc')
    assert.ok(handoff, `no handoff: ${landed.hash}`)
    assert.equal(landed.searchParams.get('tenant'), tenantId)
    return call(server, undefined, 'POST', '/v1/staff/oidc/session', { tenantId, handoff })
  }

  test('a SCIM-provisioned member signs in with the role their claim maps to; refresh and sign-out', async () => {
    const provisioned = await createStaff(
      server.ctx,
      bank.tenantId,
      { name: 'alice', role: 'agent', externalId: 'okta-alice' },
      { kind: 'system', id: null },
    )
    const session = await signIn(bank.tenantId, 'alice')
    assert.equal(session.status, 201, JSON.stringify(session.body))
    assert.equal(session.body.staffId, provisioned.id)
    assert.match(session.body.token, /^srs_/)
    const lifetime = Date.parse(session.body.expiresAt) - Date.now()
    assert.ok(lifetime <= 600_000 && lifetime > 500_000, 'a console token lives ten minutes')
    const me = await call(server, session.body.token, 'GET', '/v1/me')
    assert.equal(me.body.role, 'supervisor', 'the role claim maps to supervisor')

    const refreshed = await call(server, session.body.token, 'POST', '/v1/staff/session/refresh')
    assert.equal(refreshed.status, 201)
    assert.notEqual(refreshed.body.token, session.body.token)
    assert.equal(refreshed.body.sessionExpiresAt, session.body.sessionExpiresAt, 'a refresh never extends the session')
    assert.equal((await call(server, refreshed.body.token, 'GET', '/v1/me')).status, 200)

    const signedOut = await call(server, refreshed.body.token, 'POST', '/v1/staff/session/sign-out')
    assert.equal(signedOut.status, 200)
    const logout = new URL(signedOut.body.endSessionUrl)
    assert.equal(logout.origin, idp.issuer, 'RP-initiated logout at the provider')
    assert.ok(logout.searchParams.get('id_token_hint'))
    assert.equal(logout.searchParams.get('post_logout_redirect_uri'), `${server.url}/console/?tenant=${bank.tenantId}`)
    for (const token of [session.body.token, refreshed.body.token]) {
      assert.equal((await call(server, token, 'GET', '/v1/me')).status, 401, 'every token of the session ended')
      assert.equal((await call(server, token, 'POST', '/v1/staff/session/refresh')).status, 401)
    }
  })

  test('signing out at the provider ends the console session at once (the provider’s back-channel logout)', async () => {
    const browser = new Browser('alice')
    const landed = await browser.go(authorize(bank.tenantId))
    const handoff = fragmentOf(landed).get('oidc')
    const session = await call(server, undefined, 'POST', '/v1/staff/oidc/session', {
      tenantId: bank.tenantId,
      handoff,
    })
    assert.equal(session.status, 201)
    assert.equal((await call(server, session.body.token, 'GET', '/v1/me')).status, 200)

    // The staff member signs out at the provider itself, not in the console.
    const confirm = await browser.page(`${idp.issuer}/session/end?client_id=strongroom`)
    const action = /id="op.logoutForm" method="post" action="([^"]+)"/.exec(confirm)?.[1]
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm)?.[1]
    assert.ok(action && xsrf, confirm)
    await browser.go(new URL(action, idp.issuer).href, {
      form: { xsrf, logout: 'yes' },
      stop: (url) => url.pathname.startsWith('/session/end/success'),
    })
    assert.equal((await call(server, session.body.token, 'GET', '/v1/me')).status, 401)
    assert.equal((await call(server, session.body.token, 'POST', '/v1/staff/session/refresh')).status, 401)
    await server.flushAudit()
    const ended = await server.ctx.db
      .selectFrom('audit_events')
      .select(['outcome', 'details'])
      .where('tenant_id', '=', bank.tenantId)
      .where('action', '=', 'staff.oidc.back-channel-logout')
      .execute()
    assert.deepEqual(
      ended.map((e) => [e.outcome, JSON.parse(e.details).by]),
      [['success', 'sid']],
    )
  })

  test('the handoff code is single use; a token not from a sign-in cannot refresh', async () => {
    const landed = await new Browser('alice').go(authorize(bank.tenantId))
    const handoff = fragmentOf(landed).get('oidc') as string
    const body = { tenantId: bank.tenantId, handoff }
    assert.equal((await call(server, undefined, 'POST', '/v1/staff/oidc/session', body)).status, 201)
    const again = await call(server, undefined, 'POST', '/v1/staff/oidc/session', body)
    assert.equal(again.status, 401)
    assert.equal(again.body.type, `${PROBLEMS}auth/sign-in-failed`)
    const elsewhere = await call(server, undefined, 'POST', '/v1/staff/oidc/session', {
      ...body,
      tenantId: keyBank.tenantId,
    })
    assert.equal(elsewhere.status, 401)
    const typed = await call(server, bank.agentToken, 'POST', '/v1/staff/session/refresh')
    assert.equal(typed.body.type, `${PROBLEMS}auth/session-ended`)
  })

  test('first sign-in makes the member (private_key_jwt client); the provider’s public key is shown, never the private', async () => {
    idp.users.set('carol', { sub: 'okta-carol', username: 'carol', roles: ['Strongroom.Agent'] })
    const session = await signIn(keyBank.tenantId, 'carol')
    assert.equal(session.status, 201, JSON.stringify(session.body))
    const me = await call(server, session.body.token, 'GET', '/v1/me')
    assert.equal(me.body.role, 'agent')
    const staff = await call(server, keyBank.adminToken, 'GET', '/v1/staff')
    assert.ok(staff.body.staff.some((s: { name: string }) => s.name === 'carol'))
    const view = await call(server, keyBank.adminToken, 'GET', '/v1/staff-sign-in/oidc')
    assert.equal(view.body.publicJwk.kid, 'bank-rp-1')
    assert.equal(view.body.publicJwk.d, undefined)
    assert.equal(JSON.stringify(view.body).includes(clientJwk.d as string), false)
    const stored = await server.ctx.db.selectFrom('staff_oidc_providers').select('credential').execute()
    for (const row of stored) {
      assert.equal(Buffer.from(row.credential).includes(SECRET), false, 'the secret is sealed at rest')
      assert.equal(Buffer.from(row.credential).includes(clientJwk.d as string), false, 'the key is sealed at rest')
    }
    assert.equal((await call(server, bank.agentToken, 'GET', '/v1/staff-sign-in/oidc')).status, 403)
  })

  test('refused: no mapped role, a deactivated member, an unknown or replayed state, a replayed code, a changed nonce, a provider error', async () => {
    const noRole = await new Browser('bob').go(authorize(bank.tenantId))
    assert.equal(fragmentOf(noRole).get('sign-in-error'), 'no-role')

    const dave = await createStaff(
      server.ctx,
      bank.tenantId,
      { name: 'dave', role: 'agent', externalId: 'okta-dave', active: false },
      { kind: 'system', id: null },
    )
    idp.users.set('dave', { sub: 'okta-dave', username: 'dave', roles: ['Strongroom.Agent'] })
    const deactivated = await new Browser('dave').go(authorize(bank.tenantId))
    assert.equal(fragmentOf(deactivated).get('sign-in-error'), 'deactivated')
    assert.ok(dave.id)

    const callback = (url: URL) => url.pathname === '/sign-in/oidc/callback'
    const reached = await new Browser('alice').go(authorize(bank.tenantId), { stop: callback })
    const forged = new URL(reached)
    forged.searchParams.set('state', 'not-the-state')
    assert.equal(fragmentOf(await new Browser('alice').go(forged.href)).get('sign-in-error'), 'state')
    const landed = await new Browser('alice').go(reached.href)
    assert.ok(fragmentOf(landed).get('oidc'), 'the genuine callback works once')
    const replayed = await new Browser('alice').go(reached.href)
    assert.equal(fragmentOf(replayed).get('sign-in-error'), 'state', 'a callback replayed finds its state used')

    // The used code with a fresh sign-in's state: the provider refuses it (and PKCE would not match).
    const fresh = await new Browser('alice').go(authorize(bank.tenantId), { stop: callback })
    const replayedCode = new URL(fresh)
    replayedCode.searchParams.set('code', reached.searchParams.get('code') as string)
    assert.equal(fragmentOf(await new Browser('alice').go(replayedCode.href)).get('sign-in-error'), 'token')

    // A nonce other than the one Strongroom chose: the ID token carries it and is refused.
    const started = await new Browser('alice').go(authorize(bank.tenantId), {
      stop: (url) => url.origin === idp.issuer,
    })
    started.searchParams.set('nonce', 'attacker-chosen-nonce')
    assert.equal(fragmentOf(await new Browser('alice').go(started.href)).get('sign-in-error'), 'token')

    const cancelled = await new Browser('alice').go(authorize(bank.tenantId), {
      stop: (url) => url.origin === idp.issuer,
    })
    const errorBack = new URL(`${server.url}/sign-in/oidc/callback`)
    errorBack.searchParams.set('error', 'access_denied')
    errorBack.searchParams.set('state', cancelled.searchParams.get('state') as string)
    assert.equal(fragmentOf(await new Browser('alice').go(errorBack.href)).get('sign-in-error'), 'provider-error')

    const unknownTenant = await new Browser('alice').go(authorize(`ten_${'x'.repeat(22)}`))
    assert.equal(fragmentOf(unknownTenant).get('sign-in-error'), 'no-provider')

    await server.flushAudit()
    const denied = await server.ctx.db
      .selectFrom('audit_events')
      .select('reason')
      .where('action', '=', 'staff.oidc.sign-in')
      .where('outcome', '=', 'denied')
      .execute()
    for (const reason of ['no-role', 'deactivated', 'state', 'token', 'provider-error', 'no-provider']) {
      assert.ok(
        denied.some((row) => row.reason === reason),
        `audited: ${reason}`,
      )
    }
  })

  test('deactivating the member through SCIM ends the console session: its token and its refresh', async () => {
    idp.users.set('erin', { sub: 'okta-erin', username: 'erin', roles: ['Strongroom.Agent'] })
    const session = await signIn(bank.tenantId, 'erin')
    assert.equal(session.status, 201)
    const deactivated = await call(server, bank.adminToken, 'POST', `/v1/staff/${session.body.staffId}/deactivate`)
    assert.equal(deactivated.status, 200)
    assert.equal((await call(server, session.body.token, 'GET', '/v1/me')).status, 401)
    assert.equal((await call(server, session.body.token, 'POST', '/v1/staff/session/refresh')).status, 401)
    const again = await new Browser('erin').go(authorize(bank.tenantId))
    assert.equal(fragmentOf(again).get('sign-in-error'), 'deactivated')
  })

  test('a provider is configured by admins only, with a secret or key its method needs; bad input changes nothing', async () => {
    const before = await call(server, bank.adminToken, 'GET', '/v1/staff-sign-in/oidc')
    for (const bad of [
      { issuer: idp.issuer, clientId: 'x', authMethod: 'private_key_jwt', clientSecret: 's' },
      { issuer: idp.issuer, clientId: 'x', authMethod: 'client_secret_post', privateKeyJwk: clientJwk },
      { issuer: idp.issuer, clientId: 'x', authMethod: 'private_key_jwt', privateKeyJwk: { kty: 'EC' } },
      { issuer: 'ftp://idp', clientId: 'x', authMethod: 'client_secret_basic' },
      { issuer: idp.issuer, clientId: 'x', authMethod: 'client_secret_basic', scopes: 'profile' },
      { issuer: idp.issuer, clientId: 'x', authMethod: 'client_secret_basic', sessionSeconds: 86400 },
    ]) {
      const refused = await call(server, bank.adminToken, 'PUT', '/v1/staff-sign-in/oidc', bad)
      assert.equal(refused.status, 400, JSON.stringify(bad))
    }
    assert.equal(
      (await call(server, bank.agentToken, 'PUT', '/v1/staff-sign-in/oidc', { issuer: idp.issuer })).status,
      403,
    )
    assert.deepEqual(await call(server, bank.adminToken, 'GET', '/v1/staff-sign-in/oidc'), before)
  })
})

describe('ID tokens a provider must never be trusted for', () => {
  let bank: TestBank
  let forger: Awaited<ReturnType<typeof startScriptedIdp>>
  /** What the forging provider's token endpoint signs, given the nonce Strongroom sent. */
  let forge: (nonce: string) => Promise<string>
  const forgeries: Record<string, (nonce: string) => Promise<string>> = {}

  before(async () => {
    bank = await createTestBank(server, 'Forged Bank')
    forger = await startScriptedIdp({ idToken: (nonce) => forge(nonce) })
    const privateKey = forger.signingKey
    const sign = (claims: Record<string, unknown>, nonce: string, key = privateKey) =>
      new SignJWT({ nonce, roles: ['Strongroom.Agent'], ...claims })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer((claims.iss as string) ?? forger.issuer)
        .setAudience((claims.aud as string) ?? 'strongroom')
        .setSubject('forged-user')
        .setIssuedAt((claims.iat as number) ?? Math.floor(Date.now() / 1000))
        .setExpirationTime((claims.exp as number) ?? Math.floor(Date.now() / 1000) + 300)
        .sign(key)
    forgeries.valid = (nonce) => sign({}, nonce)
    forgeries.tampered = async (nonce) => {
      const [header, , signature] = (await sign({}, nonce)).split('.')
      const payload = Buffer.from(
        JSON.stringify({
          iss: forger.issuer,
          aud: 'strongroom',
          sub: 'forged-user',
          nonce,
          roles: ['admin'],
          exp: 2e9,
          iat: Math.floor(Date.now() / 1000),
        }),
      ).toString('base64url')
      return `${header}.${payload}.${signature}`
    }
    forgeries['wrong issuer'] = (nonce) => sign({ iss: 'https://evil.example' }, nonce)
    forgeries['wrong audience'] = (nonce) => sign({ aud: 'another-client' }, nonce)
    forgeries.expired = (nonce) =>
      sign({ iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 }, nonce)
    forgeries['another key'] = async (nonce) => sign({}, nonce, (await generateKeyPair('ES256')).privateKey)
    await call(server, bank.adminToken, 'PUT', '/v1/policies/scim-roles', ROLE_MAPPING)
    const configured = await call(server, bank.adminToken, 'PUT', '/v1/staff-sign-in/oidc', {
      issuer: forger.issuer,
      clientId: 'strongroom',
      authMethod: 'client_secret_post',
      clientSecret: SECRET,
    })
    assert.equal(configured.status, 200)
  })
  after(() => forger.close())

  test('the forging provider’s well-formed token is accepted (the harness is sound)', async () => {
    forge = forgeries.valid as typeof forge
    const landed = await new Browser('x').go(`${server.url}/sign-in/oidc?tenant=${bank.tenantId}`)
    assert.ok(fragmentOf(landed).get('oidc'), landed.hash)
  })

  for (const name of ['tampered', 'wrong issuer', 'wrong audience', 'expired', 'another key']) {
    test(`an ID token ${name === 'tampered' ? 'tampered with' : `with ${name}`} is refused`, async () => {
      forge = forgeries[name] as typeof forge
      const landed = await new Browser('x').go(`${server.url}/sign-in/oidc?tenant=${bank.tenantId}`)
      assert.equal(fragmentOf(landed).get('sign-in-error'), 'token')
      assert.equal(fragmentOf(landed).get('oidc'), null)
    })
  }
})
