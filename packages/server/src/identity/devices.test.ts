import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  createDpopProof,
  enrolDevice,
  generateDeviceKeys,
  StaffClient,
  StaffToken,
  StrongroomError,
} from '@strongroom/sdk'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'

describe('device enrolment and DPoP-bound access tokens', () => {
  let server: TestServer
  let bank: TestBank

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
  })
  after(() => server.stop())

  async function post(path: string, headers: Record<string, string>, body?: unknown) {
    const response = await fetch(server.url + path, {
      method: 'POST',
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? null : JSON.stringify(body),
    })
    return { status: response.status, type: response.headers.get('content-type'), body: await response.json() }
  }

  test('a device enrols with a single-use code and then reads as itself', async () => {
    const code = await bank.enrolmentCode()
    const { client, device, tenantId } = await enrolDevice({ baseUrl: server.url, enrolmentCode: code, label: 'Phone' })
    assert.equal(tenantId, bank.tenantId)
    assert.equal(device.customerId, bank.customerId)
    assert.equal(device.status, 'active')
    const me = await client.me()
    assert.deepEqual(me, { kind: 'device', tenantId: bank.tenantId, deviceId: device.id, customerId: bank.customerId })
  })

  test('Ed25519 device keys are accepted too', async () => {
    const { client } = await enrolDevice({
      baseUrl: server.url,
      enrolmentCode: await bank.enrolmentCode(),
      label: 'Tablet',
      algorithm: 'EdDSA',
    })
    assert.equal((await client.me()).kind, 'device')
  })

  test('a code works once: the second enrolment, even with a new key, is refused', async () => {
    const code = await bank.enrolmentCode()
    await enrolDevice({ baseUrl: server.url, enrolmentCode: code, label: 'First' })
    await assert.rejects(enrolDevice({ baseUrl: server.url, enrolmentCode: code, label: 'Second' }), (error) => {
      assert.ok(error instanceof StrongroomError)
      assert.equal(error.type, `${PROBLEMS}identity/invalid-enrolment-code`)
      return true
    })
  })

  test('ten devices racing with one code: exactly one enrols', async () => {
    const code = await bank.enrolmentCode()
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => enrolDevice({ baseUrl: server.url, enrolmentCode: code, label: `d${i}` })),
    )
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
  })

  test('an unknown code and a code typed in lower case with spaces', async () => {
    const unknown = await post(
      '/v1/devices',
      { dpop: await createDpopProof(await generateDeviceKeys(), { htm: 'POST', htu: `${server.url}/v1/devices` }) },
      { enrolmentCode: 'AAAA-BBBB-CCCC-DDDD', label: 'x' },
    )
    assert.equal(unknown.status, 400)
    assert.match(unknown.type ?? '', /^application\/problem\+json/)
    assert.equal(unknown.body.type, `${PROBLEMS}identity/invalid-enrolment-code`)

    const code = (await bank.enrolmentCode()).toLowerCase().replaceAll('-', ' ')
    const { device } = await enrolDevice({ baseUrl: server.url, enrolmentCode: code, label: 'typed' })
    assert.equal(device.customerId, bank.customerId)
  })

  test('enrolment without a DPoP proof is refused and consumes nothing', async () => {
    const code = await bank.enrolmentCode()
    const refused = await post('/v1/devices', {}, { enrolmentCode: code, label: 'x' })
    assert.equal(refused.status, 401)
    assert.equal(refused.body.type, `${PROBLEMS}auth/invalid-dpop-proof`)
    const { device } = await enrolDevice({ baseUrl: server.url, enrolmentCode: code, label: 'after' })
    assert.ok(device.id)
  })

  test('the same key cannot enrol twice', async () => {
    const keys = await generateDeviceKeys()
    await enrolDevice({ baseUrl: server.url, enrolmentCode: await bank.enrolmentCode(), label: 'a', keys })
    await assert.rejects(
      enrolDevice({ baseUrl: server.url, enrolmentCode: await bank.enrolmentCode(), label: 'b', keys }),
      (error) => error instanceof StrongroomError && error.type === `${PROBLEMS}identity/device-key-in-use`,
    )
  })

  describe('a request with a device token', () => {
    let token: string
    let keys: Awaited<ReturnType<typeof generateDeviceKeys>>
    const meUrl = () => `${server.url}/v1/me`

    before(async () => {
      keys = await generateDeviceKeys()
      const enrolled = await post(
        '/v1/devices',
        { dpop: await createDpopProof(keys, { htm: 'POST', htu: `${server.url}/v1/devices` }) },
        { enrolmentCode: await bank.enrolmentCode(), label: 'raw' },
      )
      assert.equal(enrolled.status, 201)
      token = enrolled.body.token.accessToken
      assert.match(token, /^srd_/)
      assert.equal(enrolled.body.token.tokenType, 'DPoP')
    })

    async function me(headers: Record<string, string>) {
      const response = await fetch(meUrl(), { headers })
      return { status: response.status, body: await response.json() }
    }

    test('with a fresh proof from its key succeeds', async () => {
      const proof = await createDpopProof(keys, { htm: 'GET', htu: meUrl(), accessToken: token })
      assert.equal((await me({ authorization: `DPoP ${token}`, dpop: proof })).status, 200)
    })

    test('without a proof is refused: a stolen token alone is useless', async () => {
      const result = await me({ authorization: `DPoP ${token}` })
      assert.equal(result.status, 401)
      assert.equal(result.body.type, `${PROBLEMS}auth/invalid-dpop-proof`)
    })

    test('with a replayed proof is refused', async () => {
      const proof = await createDpopProof(keys, { htm: 'GET', htu: meUrl(), accessToken: token })
      assert.equal((await me({ authorization: `DPoP ${token}`, dpop: proof })).status, 200)
      const replay = await me({ authorization: `DPoP ${token}`, dpop: proof })
      assert.equal(replay.status, 401)
      assert.equal(replay.body.type, `${PROBLEMS}auth/dpop-replay`)
    })

    test('twenty parallel uses of one proof: exactly one passes', async () => {
      const proof = await createDpopProof(keys, { htm: 'GET', htu: meUrl(), accessToken: token })
      const results = await Promise.all(
        Array.from({ length: 20 }, () => me({ authorization: `DPoP ${token}`, dpop: proof })),
      )
      assert.equal(results.filter((r) => r.status === 200).length, 1)
    })

    test("with a proof signed by another key (the thief's) is refused", async () => {
      const thief = await generateDeviceKeys()
      const proof = await createDpopProof(thief, { htm: 'GET', htu: meUrl(), accessToken: token })
      const result = await me({ authorization: `DPoP ${token}`, dpop: proof })
      assert.equal(result.status, 401)
      assert.equal(result.body.type, `${PROBLEMS}auth/invalid-dpop-proof`)
    })

    test('with a proof for another method, another URL, or another token is refused', async () => {
      const wrongMethod = await createDpopProof(keys, { htm: 'POST', htu: meUrl(), accessToken: token })
      const wrongUrl = await createDpopProof(keys, {
        htm: 'GET',
        htu: `${server.url}/v1/conversations`,
        accessToken: token,
      })
      const wrongToken = await createDpopProof(keys, { htm: 'GET', htu: meUrl(), accessToken: `${token}x` })
      for (const dpop of [wrongMethod, wrongUrl, wrongToken]) {
        const result = await me({ authorization: `DPoP ${token}`, dpop })
        assert.equal(result.status, 401)
        assert.equal(result.body.type, `${PROBLEMS}auth/invalid-dpop-proof`)
      }
    })

    test('a forged token, a staff token in the DPoP scheme, and garbage are refused alike', async () => {
      for (const authorization of [`DPoP srd_${'A'.repeat(43)}`, `DPoP ${bank.agentToken}`, 'DPoP', 'Basic abc']) {
        const proof = await createDpopProof(keys, { htm: 'GET', htu: meUrl(), accessToken: token })
        const result = await me({ authorization, dpop: proof })
        assert.equal(result.status, 401, authorization)
      }
    })

    test('the device renews its token by proving its key', async () => {
      const renewed = await post('/v1/devices/token', {
        dpop: await createDpopProof(keys, { htm: 'POST', htu: `${server.url}/v1/devices/token` }),
      })
      assert.equal(renewed.status, 200)
      assert.notEqual(renewed.body.accessToken, token)
      const unknownKey = await post('/v1/devices/token', {
        dpop: await createDpopProof(await generateDeviceKeys(), {
          htm: 'POST',
          htu: `${server.url}/v1/devices/token`,
        }),
      })
      assert.equal(unknownKey.status, 401)
    })
  })

  test('an expired access token is refused, and the SDK renews it by itself', async () => {
    const { client, device } = await enrolDevice({
      baseUrl: server.url,
      enrolmentCode: await bank.enrolmentCode(),
      label: 'expiring',
    })
    await server.ctx.db
      .updateTable('access_tokens')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('device_id', '=', device.id)
      .execute()
    const me = await client.me()
    assert.equal(me.deviceId, device.id)
  })

  test('staff list a customer’s devices; another tenant’s customer is not found', async () => {
    const agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const { devices } = await agent.listDevices(bank.customerId)
    assert.ok(devices.length >= 1)
    assert.ok(devices.every((d) => d.customerId === bank.customerId))
    const other = await createTestBank(server, 'Other Bank')
    const outsider = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(other.agentToken) })
    await assert.rejects(
      outsider.listDevices(bank.customerId),
      (error) => error instanceof StrongroomError && error.status === 404,
    )
  })
})
