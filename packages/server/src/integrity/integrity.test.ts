import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { devAttestation, enrolDevice, StaffClient, StaffToken, StrongroomError } from '@strongroom/sdk'
import WebSocket from 'ws'
import { signJwt } from '../platform/keyring/jws.ts'
import { openSigningKey, rotateSigningKey, type SigningKey } from '../platform/keyring/signing-keys.ts'
import { attackerKey } from '../testing/chain-rewrite.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { attest } from './attest.ts'
import { createHardwareVerifiers } from './hardware-attestation.ts'
import { issueIntegrityToken } from './tokens.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'
const app = { appId: 'com.bank.app', appVersion: '3.2.0' }
const clean = { rooted: false, debugger: false, hooking: false, emulator: false }
const problem = (type: string, detail?: string) => (e: unknown) => {
  assert.ok(e instanceof StrongroomError)
  assert.equal(e.type, PROBLEMS + type)
  if (detail !== undefined) assert.equal(e.problem.detail, detail)
  return true
}

describe('app integrity: attestation, integrity tokens and the API gate', () => {
  let server: TestServer
  let bank: TestBank

  before(async () => {
    server = await startTestServer({ integrityRequired: true, minAppVersion: '3.0.0' })
    bank = await createTestBank(server)
  })
  after(() => server.stop())

  const enrol = async () =>
    enrolDevice({
      baseUrl: server.url,
      enrolmentCode: await bank.enrolmentCode(),
      label: 'phone',
      WebSocket: WebSocket as never,
    })

  test('without an integrity token a device gets nothing; after attesting it gets everything', async () => {
    const { client, device } = await enrol()
    await assert.rejects(client.me(), problem('integrity/missing'))
    assert.deepEqual(await client.attest({ app, signals: clean }), { expiresIn: 600, scope: 'full' })
    assert.equal((await client.me()).deviceId, device.id)
    await client.request('POST', '/v1/factors/totp')
  })

  test('a rooted device gets a short read-only token', async () => {
    const { client } = await enrol()
    assert.deepEqual(await client.attest({ app, signals: { ...clean, rooted: true } }), {
      expiresIn: 60,
      scope: 'read-only',
    })
    assert.equal((await client.me()).kind, 'device')
    await assert.rejects(client.request('POST', '/v1/factors/totp'), problem('integrity/limited'))
  })

  test('hooking frameworks, debuggers and outdated apps are denied with a reason the app can show', async () => {
    const { client } = await enrol()
    await assert.rejects(
      client.attest({ app, signals: { ...clean, hooking: true } }),
      problem('integrity/denied', 'hooking-framework'),
    )
    await assert.rejects(
      client.attest({ app, signals: { ...clean, debugger: true } }),
      problem('integrity/denied', 'debugger-attached'),
    )
    await assert.rejects(
      client.attest({ app: { ...app, appVersion: '2.9.9' }, signals: clean }),
      problem('integrity/denied', 'app-version-below-minimum'),
    )
    await server.flushAudit()
    const reasons = await server.ctx.db
      .selectFrom('audit_events')
      .select('reason')
      .where('action', '=', 'integrity.attest')
      .where('outcome', '=', 'denied')
      .execute()
    assert.ok(
      ['hooking-framework', 'debugger-attached', 'app-version-below-minimum'].every((r) =>
        reasons.some((x) => x.reason === r),
      ),
    )
  })

  test("staff see each device's latest integrity verdict; a device that never attested has none", async () => {
    const agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const phone = await enrol()
    const quiet = await enrol()
    const verdictOf = async (deviceId: string) =>
      (await agent.deviceVerdicts(bank.customerId)).find((v) => v.deviceId === deviceId)
    assert.equal(await verdictOf(phone.device.id), undefined)

    await phone.client.attest({ app, signals: clean })
    const allowed = await verdictOf(phone.device.id)
    assert.deepEqual(
      { ...allowed, decidedAt: undefined },
      {
        deviceId: phone.device.id,
        decision: 'allow',
        reason: 'ok',
        flags: [],
        format: 'dev',
        securityLevel: 'software',
        appVersion: '3.2.0',
        decidedAt: undefined,
      },
    )
    await phone.client.attest({ app, signals: { ...clean, rooted: true, emulator: true } })
    const limited = await verdictOf(phone.device.id)
    assert.deepEqual(
      [limited?.decision, limited?.reason, limited?.flags],
      ['limited', 'rooted-device', ['rooted', 'emulator']],
    )
    await assert.rejects(phone.client.attest({ app, signals: { ...clean, hooking: true } }))
    assert.deepEqual([(await verdictOf(phone.device.id))?.decision], ['deny'])
    assert.equal(await verdictOf(quiet.device.id), undefined)

    const other = await createTestBank(server, 'Verdict Bank')
    const stranger = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(other.agentToken) })
    await assert.rejects(stranger.deviceVerdicts(bank.customerId), problem('request/not-found'))
    await assert.rejects(
      phone.client.request('GET', `/v1/customers/${bank.customerId}/device-integrity`),
      problem('auth/forbidden'),
    )
  })

  test('evidence with a replayed challenge, another key or altered signals is refused', async () => {
    const { client, keys } = await enrol()
    const { challenge } = await client.request<{ challenge: string }>('POST', '/v1/integrity/challenges')
    const evidence = await devAttestation(keys, challenge, app, clean)
    await client.request('POST', '/v1/integrity/attest', evidence)
    await assert.rejects(
      client.request('POST', '/v1/integrity/attest', evidence),
      problem('integrity/invalid-evidence', 'the challenge is unknown, used or expired'),
    )
    const fresh = await client.request<{ challenge: string }>('POST', '/v1/integrity/challenges')
    const other = await enrol()
    await assert.rejects(
      client.request('POST', '/v1/integrity/attest', await devAttestation(other.keys, fresh.challenge, app, clean)),
      problem('integrity/invalid-evidence', 'the proof does not verify with this device key'),
    )
    const signed = await devAttestation(keys, fresh.challenge, app, { ...clean, rooted: true })
    await assert.rejects(
      client.request('POST', '/v1/integrity/attest', { ...signed, signals: clean }),
      problem('integrity/invalid-evidence', 'the proof does not cover this evidence'),
    )
  })

  test("another device's token, a forged, an expired and a wrong-audience token are each refused", async () => {
    const a = await enrol()
    const b = await enrol()
    await a.client.attest({ app, signals: clean })
    const provider = server.keyProvider
    const key = await openSigningKey(server.ctx.db, provider, 'integrity-token')
    const mint = async (
      claims: { sub: string; aud?: string; expiresIn?: number; tid?: string },
      signer: SigningKey = key,
    ) =>
      signJwt(signer, 'strongroom-integrity+jwt', {
        tid: claims.tid ?? bank.tenantId,
        cnf: { jkt: b.device.keyThumbprint },
        scope: 'full',
        iss: 'strongroom',
        sub: claims.sub,
        aud: claims.aud ?? 'strongroom-api',
        exp: Math.floor(Date.now() / 1000) + (claims.expiresIn ?? 60),
      })
    const stranger = { ...attackerKey(key.id, 'p256') }
    const cases: [string, string][] = [
      [a.client.integrityToken as string, 'integrity/wrong-device'],
      [await mint({ sub: b.device.id }, stranger), 'integrity/invalid'],
      [await mint({ sub: b.device.id, expiresIn: -10 }), 'integrity/expired'],
      [await mint({ sub: b.device.id, aud: 'someone-else' }), 'integrity/wrong-audience'],
      ['not.a.token', 'integrity/invalid'],
    ]
    for (const [token, type] of cases) {
      const result = await fetchMe(b, token)
      assert.equal(result.type, PROBLEMS + type, type)
    }
    assert.equal((await fetchMe(b, await mint({ sub: b.device.id }))).kind, 'device')
  })

  test('the stream checks the integrity token too', async () => {
    const { client } = await enrol()
    const errors: string[] = []
    const refused = client.stream({ onError: (e) => errors.push(e.message) })
    await new Promise((resolve) => setTimeout(resolve, 500))
    refused.close()
    assert.ok(errors.some((m) => m.startsWith('An integrity token is required')))
    await client.attest({ app, signals: clean })
    const stream = client.stream()
    await stream.ready()
    stream.close()
  })

  test('a stream frame obeys its HTTP route: a read-only token signs in and reads, and its send is refused as a POST is', async () => {
    const { client } = await enrol()
    await client.attest({ app, signals: { ...clean, rooted: true } })
    const agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const conversation = await agent.createConversation({ customerId: bank.customerId })
    const message = { contentType: 'text/plain', ciphertext: new TextEncoder().encode('from a rooted phone') }
    await assert.rejects(client.sendMessage(conversation.id, message), problem('integrity/limited'))
    const stream = client.stream()
    await stream.ready()
    await assert.rejects(stream.send(conversation.id, message), problem('integrity/limited'))
    stream.close()
    assert.deepEqual(await client.listMessages(conversation.id), [])
  })

  test('a deactivated app version loses its token at once and cannot attest again; other versions go on', async () => {
    const old = await enrol()
    const current = await enrol()
    await old.client.attest({ app: { ...app, appVersion: '3.1.0' }, signals: clean })
    await current.client.attest({ app, signals: clean })
    assert.equal((await old.client.me()).kind, 'device')
    const errors: Error[] = []
    const oldStream = old.client.stream({ onError: (e) => errors.push(e) })
    const currentStream = current.client.stream()
    await Promise.all([oldStream.ready(), currentStream.ready()])
    const deactivate = await fetch(`${server.url}/v1/apps/${app.appId}/versions/3.1.0/deactivate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bank.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'CVE in the 3.1.0 release' }),
    })
    assert.equal(deactivate.status, 204)
    // The stream the old version held open is closed at once and says why; it does not come back.
    const deadline = Date.now() + 5000
    while (oldStream.state !== 'closed' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    assert.equal(oldStream.state, 'closed')
    const denial = errors.find((e) => e instanceof StrongroomError)
    assert.ok(denial && problem('integrity/denied', 'app-version-deactivated')(denial))
    assert.equal(currentStream.state, 'open')
    currentStream.close()
    await assert.rejects(old.client.me(), problem('integrity/denied', 'app-version-deactivated'))
    await assert.rejects(
      old.client.attest({ app: { ...app, appVersion: '3.1.0' }, signals: clean }),
      problem('integrity/denied', 'app-version-deactivated'),
    )
    assert.equal((await current.client.me()).kind, 'device')
    const byAgent = await fetch(`${server.url}/v1/apps/${app.appId}/versions/3.2.0/deactivate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bank.agentToken}` },
    })
    assert.equal(byAgent.status, 403)
  })

  test('after the integrity-token key is rotated, tokens of the old key and of the new one both pass the gate', async () => {
    const { client, device } = await enrol()
    await client.attest({ app, signals: clean })
    const oldToken = client.integrityToken as string
    const provider = server.keyProvider
    const newKeyId = await rotateSigningKey(server.ctx.db, provider, 'integrity-token')
    const newKey = await openSigningKey(server.ctx.db, provider, 'integrity-token')
    assert.equal(newKey.id, newKeyId)
    const newToken = await issueIntegrityToken(newKey, {
      tenantId: bank.tenantId,
      deviceId: device.id,
      keyThumbprint: device.keyThumbprint,
      ...app,
      verdict: 'allow',
      flags: [],
      scope: 'full',
      lifetimeSeconds: 60,
    })
    const kidOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString()).kid
    assert.equal(kidOf(newToken), newKeyId)
    assert.notEqual(kidOf(oldToken), newKeyId)
    // The node has not seen the new key yet: a token naming it makes it look again; both tokens pass until they expire.
    for (const token of [newToken, oldToken]) {
      const url = `${server.url}/v1/me`
      const auth = await client.credentials.authorize('GET', url)
      const response = await fetch(url, {
        headers: { authorization: auth.authorization, dpop: auth.dpop as string, 'strongroom-integrity': token },
      })
      assert.equal(response.status, 200, `a token of ${kidOf(token)} passes`)
    }
  })

  test('each bank sets its own policy: what each signal leads to, lifetimes, and whether tokens are required', async () => {
    const other = await createTestBank(server, 'Policy Bank')
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(other.adminToken) })
    const policy = {
      required: false,
      routes: ['POST /v1/factors/totp'],
      minAppVersion: '3.1.0',
      rooted: 'deny',
      emulator: 'allow',
      debugger: 'limited',
      hooking: 'deny',
      fullLifetimeSeconds: 120,
      limitedLifetimeSeconds: 30,
    }
    await admin.request('PUT', '/v1/policies/integrity', policy)
    assert.deepEqual(await admin.request('GET', '/v1/policies/integrity'), policy)
    const enrolIn = async () =>
      (await enrolDevice({ baseUrl: server.url, enrolmentCode: await other.enrolmentCode(), label: 'p' })).client
    // This bank does not require integrity tokens, although the deployment does, except on the route it marked.
    const phone = await enrolIn()
    assert.equal((await phone.me()).kind, 'device')
    await assert.rejects(phone.request('POST', '/v1/factors/totp'), problem('integrity/missing'))
    await assert.rejects(
      phone.attest({ app, signals: { ...clean, rooted: true } }),
      problem('integrity/denied', 'rooted-device'),
    )
    assert.deepEqual(await phone.attest({ app, signals: { ...clean, emulator: true } }), {
      expiresIn: 120,
      scope: 'full',
    })
    assert.deepEqual(await phone.attest({ app, signals: { ...clean, debugger: true } }), {
      expiresIn: 30,
      scope: 'read-only',
    })
    await assert.rejects(
      phone.attest({ app: { ...app, appVersion: '3.0.9' }, signals: clean }),
      problem('integrity/denied', 'app-version-below-minimum'),
    )
    // The first bank keeps the defaults: a rooted device gets a limited token, not a refusal.
    const { client } = await enrol()
    assert.equal((await client.attest({ app, signals: { ...clean, rooted: true } })).scope, 'read-only')
    await assert.rejects(admin.request('PUT', '/v1/policies/integrity', { ...policy, rooted: 'maybe' }), {
      status: 400,
    })
    const agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(other.agentToken) })
    await assert.rejects(agent.request('PUT', '/v1/policies/integrity', policy), { status: 403 })
  })

  test('a production server refuses the dev verifier', async () => {
    const { client, keys, device } = await enrol()
    const { challenge } = await client.request<{ challenge: string }>('POST', '/v1/integrity/challenges')
    const provider = server.keyProvider
    const production = { ...server.ctx, config: { ...server.config, mode: 'production' as const } }
    await assert.rejects(
      attest(
        production,
        await openSigningKey(server.ctx.db, provider, 'integrity-token'),
        createHardwareVerifiers(server.config),
        {
          kind: 'device',
          deviceKind: 'app',
          tenantId: bank.tenantId,
          deviceId: device.id,
          customerId: device.customerId,
          jkt: device.keyThumbprint,
          tokenExpiresAt: new Date(Date.now() + 60_000),
        },
        await devAttestation(keys, challenge, app, clean),
      ),
      (e: { kind?: string }) => e.kind === 'integrity/verifier-not-allowed',
    )
  })

  async function fetchMe(device: Awaited<ReturnType<typeof enrol>>, token: string | undefined) {
    const url = `${server.url}/v1/me`
    const auth = await device.client.credentials.authorize('GET', url)
    const response = await fetch(url, {
      headers: {
        authorization: auth.authorization,
        dpop: auth.dpop as string,
        ...(token ? { 'strongroom-integrity': token } : {}),
      },
    })
    return response.json()
  }
})
