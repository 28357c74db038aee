/**
 * OpenID Connect Back-Channel Logout 1.0: a test identity provider whose signing key is served as its JWKS signs the
 * ID tokens (with `sid`) and the logout tokens; Strongroom verifies them against that JWKS.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { generateKeyPair, type JWTPayload, SignJWT } from 'jose'
import { sql } from 'kysely'
import WebSocket from 'ws'
import { eventually } from '../testing/eventually.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { startScriptedIdp } from '../testing/scripted-idp.ts'

const EVENT = 'http://schemas.openid.net/event/backchannel-logout'
const now = () => Math.floor(Date.now() / 1000)

describe('back-channel logout from the bank’s identity provider', () => {
  let server: TestServer
  let bank: TestBank
  let idp: Awaited<ReturnType<typeof startScriptedIdp>>
  let signingKey: CryptoKey
  /** Who the next sign-in at the provider is, and the provider's session id for it. */
  let next = { sub: '', sid: '' }

  async function call(token: string | undefined, method: string, path: string, body?: unknown) {
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

  /** Signs in at the provider as `sub` in its session `sid`: the one-time code the console lands with. */
  async function handoffCode(sub: string, sid: string) {
    next = { sub, sid }
    let url = new URL(`${server.url}/sign-in/oidc?tenant=${bank.tenantId}`)
    while (!url.pathname.startsWith('/console/')) {
      const response = await fetch(url, { redirect: 'manual' })
      await response.body?.cancel()
      url = new URL(response.headers.get('location') as string, url)
    }
    const handoff = new URLSearchParams(url.hash.slice(1)).get('oidc')
    assert.ok(handoff, url.hash)
    return handoff
  }

  /** A database that refuses every new staff token until the returned function is called. */
  async function refuseNewStaffTokens() {
    await sql`create function refuse_staff_token() returns trigger language plpgsql as $$
      begin raise exception 'refused for the test'; end $$`.execute(server.ctx.db)
    await sql`create trigger refuse_new_staff_token before insert on staff_tokens
      for each row execute function refuse_staff_token()`.execute(server.ctx.db)
    return async () => {
      await sql`drop trigger refuse_new_staff_token on staff_tokens`.execute(server.ctx.db)
      await sql`drop function refuse_staff_token`.execute(server.ctx.db)
    }
  }

  /** Signs in at the provider as `sub` in its session `sid`, and opens a console stream with the session's token. */
  async function consoleSession(sub: string, sid: string) {
    const handoff = await handoffCode(sub, sid)
    const session = await call(undefined, 'POST', '/v1/staff/oidc/session', { tenantId: bank.tenantId, handoff })
    assert.equal(session.status, 201)
    const token = session.body.token as string
    const socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}/v1/stream`)
    const frames: { type: string }[] = []
    const closed = new Promise<number>((resolve) => socket.on('close', resolve))
    socket.on('message', (data) => frames.push(JSON.parse(String(data))))
    await new Promise((resolve) => socket.on('open', resolve))
    socket.send(JSON.stringify({ type: 'auth', authorization: `Bearer ${token}` }))
    await eventually(
      () => frames[0]?.type,
      (type) => type === 'ready',
    )
    return { token, closed, alive: async () => (await call(token, 'GET', '/v1/me')).status === 200 }
  }

  /** A logout token as a provider signs it (§2.4), with claims changed or left out (`undefined`) as a test says. */
  async function logoutToken(claims: JWTPayload = {}, options: { key?: CryptoKey; typ?: string } = {}) {
    const payload: JWTPayload = {
      iss: idp.issuer,
      aud: 'strongroom',
      iat: now(),
      exp: now() + 120,
      jti: crypto.randomUUID(),
      events: { [EVENT]: {} },
      ...claims,
    }
    for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name]
    return new SignJWT(payload)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: options.typ ?? 'logout+jwt' })
      .sign(options.key ?? signingKey)
  }

  /** The provider's POST to the back-channel logout URL. */
  async function postLogout(token: string | undefined, tenantId = bank.tenantId) {
    const response = await fetch(`${server.url}/v1/staff-sign-in/oidc/back-channel-logout?tenant=${tenantId}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: token === undefined ? '' : new URLSearchParams({ logout_token: token }).toString(),
    })
    const text = await response.text()
    return {
      status: response.status,
      cacheControl: response.headers.get('cache-control'),
      body: text ? JSON.parse(text) : undefined,
    }
  }

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    idp = await startScriptedIdp({
      discovery: { backchannel_logout_supported: true, backchannel_logout_session_supported: true },
      idToken: (nonce) =>
        new SignJWT({ nonce, sid: next.sid, roles: ['Strongroom.Agent'] })
          .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
          .setIssuer(idp.issuer)
          .setAudience('strongroom')
          .setSubject(next.sub)
          .setIssuedAt()
          .setExpirationTime('5m')
          .sign(signingKey),
    })
    signingKey = idp.signingKey
    await call(bank.adminToken, 'PUT', '/v1/policies/scim-roles', { roles: { 'Strongroom.Agent': 'agent' } })
    const configured = await call(bank.adminToken, 'PUT', '/v1/staff-sign-in/oidc', {
      issuer: idp.issuer,
      clientId: 'strongroom',
      authMethod: 'client_secret_post',
      clientSecret: 'test-client-secret-that-is-long-enough-1234',
    })
    assert.equal(configured.status, 200)
  })
  after(async () => {
    idp.close()
    await server.stop()
  })

  test('a logout token naming the session ends it at once: its token, its refresh and its stream; others go on', async () => {
    const ended = await consoleSession('okta-ada', 'sid-ada-1')
    const other = await consoleSession('okta-ada', 'sid-ada-2')
    const answer = await postLogout(await logoutToken({ sub: 'okta-ada', sid: 'sid-ada-1' }))
    assert.deepEqual(answer, { status: 200, cacheControl: 'no-store', body: undefined })
    assert.equal(await ended.closed, 4001)
    assert.equal(await ended.alive(), false)
    assert.equal((await call(ended.token, 'POST', '/v1/staff/session/refresh')).status, 401)
    assert.equal(await other.alive(), true)

    await server.flushAudit()
    const events = await server.ctx.db
      .selectFrom('audit_events')
      .select(['outcome', 'details'])
      .where('tenant_id', '=', bank.tenantId)
      .where('action', '=', 'staff.oidc.back-channel-logout')
      .execute()
    assert.deepEqual(
      events.map((e) => [e.outcome, JSON.parse(e.details).by]),
      [['success', 'sid']],
    )
  })

  test('a console token renews its session once: a second renewal with it (a copy in other hands) ends the session', async () => {
    const session = await consoleSession('okta-rena', 'sid-rena-1')
    const other = await consoleSession('okta-rena', 'sid-rena-2')
    const renewed = await call(session.token, 'POST', '/v1/staff/session/refresh')
    assert.equal(renewed.status, 201)
    // The renewed token works, and the old one still does until it runs out (a request on its way is not cut).
    assert.equal((await call(renewed.body.token, 'GET', '/v1/me')).status, 200)
    assert.equal(await session.alive(), true)

    // Someone who copied the old token renews with it too: whoever did it second, the session ends.
    const again = await call(session.token, 'POST', '/v1/staff/session/refresh')
    assert.equal(again.status, 401)
    assert.equal(again.body.type.replace(/^.*\/problems\//, ''), 'auth/session-ended')
    assert.equal(await session.closed, 4001, 'the session’s stream closed')
    for (const token of [session.token, renewed.body.token]) {
      assert.equal((await call(token, 'GET', '/v1/me')).status, 401, 'every token of the session ended')
      assert.equal((await call(token, 'POST', '/v1/staff/session/refresh')).status, 401)
    }
    assert.equal(await other.alive(), true, 'the member’s other session goes on')

    await server.flushAudit()
    const reused = await server.ctx.db
      .selectFrom('audit_events')
      .select(['outcome', 'actor_id'])
      .where('tenant_id', '=', bank.tenantId)
      .where('action', '=', 'staff.session-token-reused')
      .execute()
    assert.equal(reused.length, 1)
    assert.equal(reused[0]?.outcome, 'failure')
  })

  test('the database failing mid-renewal leaves the token renewable: the console’s retry is no theft', async () => {
    const session = await consoleSession('okta-mia', 'sid-mia-1')
    // The database goes away once the token is marked renewed: neither the new token nor an undo of the mark is written.
    const allowNewStaffTokens = await refuseNewStaffTokens()
    await sql`create trigger refuse_unrenewing before update on staff_tokens
      for each row when (old.renewed_at is not null and new.renewed_at is null)
      execute function refuse_staff_token()`.execute(server.ctx.db)
    let failed: Awaited<ReturnType<typeof call>>
    try {
      failed = await call(session.token, 'POST', '/v1/staff/session/refresh')
    } finally {
      await sql`drop trigger refuse_unrenewing on staff_tokens`.execute(server.ctx.db)
      await allowNewStaffTokens()
    }
    // The console sees an internal error, nothing of the cause, and its session goes on.
    assert.equal(failed.status, 500)
    assert.equal(failed.body.type.replace(/^.*\/problems\//, ''), 'server/internal')
    assert.doesNotMatch(JSON.stringify(failed.body), /refused for the test|staff_tokens/)
    assert.equal(await session.alive(), true)

    // Its next request renews with the same token: a renewal, not a reuse that would end the session.
    const retried = await call(session.token, 'POST', '/v1/staff/session/refresh')
    assert.equal(retried.status, 201)
    assert.equal((await call(retried.body.token, 'GET', '/v1/me')).status, 200)
    assert.equal(await session.alive(), true)
    await server.flushAudit()
    const reused = await server.ctx.db
      .selectFrom('audit_events')
      .select('id')
      .where('tenant_id', '=', bank.tenantId)
      .where('action', '=', 'staff.session-token-reused')
      .where('target_id', '=', retried.body.staffId)
      .execute()
    assert.deepEqual(reused, [], 'no theft alarm')
    // The renewal took once: the token renewed now cannot renew again.
    assert.equal((await call(session.token, 'POST', '/v1/staff/session/refresh')).status, 401)
  })

  test('the database failing while the console’s first token is issued leaves the sign-in code usable once more', async () => {
    const handoff = await handoffCode('okta-mia', 'sid-mia-2')
    const claim = () => call(undefined, 'POST', '/v1/staff/oidc/session', { tenantId: bank.tenantId, handoff })
    const allowNewStaffTokens = await refuseNewStaffTokens()
    let failed: Awaited<ReturnType<typeof call>>
    try {
      failed = await claim()
    } finally {
      await allowNewStaffTokens()
    }
    assert.equal(failed.status, 500)
    // The console retries with the code it landed with: signed in, not sent back to the provider.
    const retried = await claim()
    assert.equal(retried.status, 201)
    assert.equal((await call(retried.body.token, 'GET', '/v1/me')).status, 200)
    // Still single use.
    assert.equal((await claim()).status, 401)
  })

  test('twenty renewals at once with one token: one new token at most, and the session ends', async () => {
    const session = await consoleSession('okta-ravi', 'sid-ravi-1')
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => call(session.token, 'POST', '/v1/staff/session/refresh')),
    )
    const issued = answers.filter((a) => a.status === 201)
    assert.equal(issued.length, 1, 'one renewal took')
    assert.ok(answers.every((a) => a.status === 201 || a.status === 401))
    assert.equal((await call(issued[0]?.body.token, 'GET', '/v1/me')).status, 401, 'then the session ended')
    assert.equal(await session.closed, 4001)
  })

  test('a logout token naming only the user ends every session of theirs, and no one else’s', async () => {
    const first = await consoleSession('okta-grace', 'sid-grace-1')
    const second = await consoleSession('okta-grace', 'sid-grace-2')
    const someoneElse = await consoleSession('okta-linus', 'sid-linus-1')
    assert.equal((await postLogout(await logoutToken({ sub: 'okta-grace' }))).status, 200)
    assert.deepEqual(await Promise.all([first.closed, second.closed]), [4001, 4001])
    assert.deepEqual([await first.alive(), await second.alive(), await someoneElse.alive()], [false, false, true])
    // A session already ended, or one the provider names that Strongroom never saw: nothing to do, still 200.
    assert.equal((await postLogout(await logoutToken({ sid: 'sid-unknown' }))).status, 200)
  })

  const refusals: Record<string, () => Promise<string | undefined>> = {
    'signed by another key': async () =>
      logoutToken({ sid: 'sid-bob' }, { key: (await generateKeyPair('ES256')).privateKey }),
    'tampered with': async () => {
      const [header, payload, signature] = (await logoutToken({ sid: 'sid-other' })).split('.')
      const claims = JSON.parse(Buffer.from(payload as string, 'base64url').toString())
      const changed = Buffer.from(JSON.stringify({ ...claims, sid: 'sid-bob' })).toString('base64url')
      return `${header}.${changed}.${signature}`
    },
    unsigned: async () => {
      const claims = { iss: idp.issuer, aud: 'strongroom', iat: now(), exp: now() + 120, jti: 'j', sid: 'sid-bob' }
      const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
      return `${part({ alg: 'none' })}.${part({ ...claims, events: { [EVENT]: {} } })}.`
    },
    'for another audience': () => logoutToken({ sid: 'sid-bob', aud: 'another-client' }),
    'from another issuer': () => logoutToken({ sid: 'sid-bob', iss: 'https://evil.example' }),
    expired: () => logoutToken({ sid: 'sid-bob', iat: now() - 3600, exp: now() - 3000 }),
    'issued too long ago': () => logoutToken({ sid: 'sid-bob', iat: now() - 3600, exp: now() + 3600 }),
    'without exp': () => logoutToken({ sid: 'sid-bob', exp: undefined }),
    'without jti': () => logoutToken({ sid: 'sid-bob', jti: undefined }),
    'without events': () => logoutToken({ sid: 'sid-bob', events: undefined }),
    'with another event': () => logoutToken({ sid: 'sid-bob', events: { 'https://example.com/other': {} } }),
    'whose event is not an object': () => logoutToken({ sid: 'sid-bob', events: { [EVENT]: 'yes' } }),
    'with a nonce': () => logoutToken({ sid: 'sid-bob', nonce: 'n-1' }),
    'naming no sid or sub': () => logoutToken({}),
    missing: async () => undefined,
    'not a JWT': async () => 'not-a-jwt',
  }

  for (const [name, make] of Object.entries(refusals)) {
    test(`a logout token ${name} is refused with 400 and ends nothing`, async () => {
      const bob = await consoleSession('okta-bob', 'sid-bob')
      const answer = await postLogout(await make())
      assert.equal(answer.status, 400)
      assert.equal(answer.cacheControl, 'no-store')
      assert.equal(answer.body.error, 'invalid_request')
      assert.equal(typeof answer.body.error_description, 'string')
      assert.equal(await bob.alive(), true)
    })
  }

  test('a logout token is used once: replayed, it is refused', async () => {
    const token = await logoutToken({ sid: 'sid-nobody' })
    assert.equal((await postLogout(token)).status, 200)
    const carol = await consoleSession('okta-carol', 'sid-nobody')
    const replayed = await postLogout(token)
    assert.deepEqual([replayed.status, replayed.body.error_description], [400, 'the logout token was used already'])
    assert.equal(await carol.alive(), true)
  })

  test('a logout token sent twenty times at once is accepted once', async () => {
    const dave = await consoleSession('okta-dave', 'sid-dave')
    const token = await logoutToken({ sid: 'sid-dave' })
    const answers = await Promise.all(Array.from({ length: 20 }, () => postLogout(token)))
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, ...Array(19).fill(400)])
    assert.equal(await dave.closed, 4001)
  })

  test('a logout token sent as JSON, not as a form, is refused (415), not cached either', async () => {
    const response = await fetch(`${server.url}/v1/staff-sign-in/oidc/back-channel-logout?tenant=${bank.tenantId}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ logout_token: await logoutToken({ sid: 'sid-json' }) }),
    })
    assert.equal(response.status, 415)
    assert.equal(response.headers.get('cache-control'), 'no-store')
  })

  test('a tenant without an identity provider refuses every logout token', async () => {
    const other = await createTestBank(server, 'Other Bank')
    const answer = await postLogout(await logoutToken({ sid: 'sid-bob' }), other.tenantId)
    assert.equal(answer.status, 400)
    assert.equal(answer.body.error, 'invalid_request')
  })
})
