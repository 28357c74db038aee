import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  enrolDevice,
  generateSecretsKeys,
  openRuntimeSecret,
  StaffClient,
  StaffToken,
  type StrongroomError,
} from '@strongroom/sdk'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'
const app = { appId: 'com.bank.app', appVersion: '3.2.0' }
const clean = { rooted: false, debugger: false, hooking: false, emulator: false }
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)
const b64 = (value: string) => Buffer.from(value).toString('base64')

describe('runtime secrets: delivered only to attested devices, sealed to the device (HPKE), rotated at once', () => {
  let server: TestServer
  let bank: TestBank
  let admin: StaffClient

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    await admin.request('PUT', '/v1/secrets/maps-api-key', { value: b64('maps-key-version-one') })
  })
  after(() => server.stop())

  async function phone(signals = clean) {
    const enrolled = await enrolDevice({ baseUrl: server.url, enrolmentCode: await bank.enrolmentCode(), label: 'p' })
    const secretsKeys = await generateSecretsKeys()
    await enrolled.client.registerSecretsKey(secretsKeys)
    return { ...enrolled, secretsKeys, attest: () => enrolled.client.attest({ app, signals }) }
  }

  test('an attested device gets the secret; after a rotation it gets the new one at once', async () => {
    const device = await phone()
    await device.attest()
    assert.equal(text(await device.client.fetchSecret('maps-api-key', device.secretsKeys)), 'maps-key-version-one')
    const rotated = await admin.request<{ version: number }>('PUT', '/v1/secrets/maps-api-key', {
      value: b64('maps-key-version-two'),
    })
    assert.equal(rotated.version, 2)
    assert.equal(text(await device.client.fetchSecret('maps-api-key', device.secretsKeys)), 'maps-key-version-two')
    // The old value is gone from the database, and the new one is not there in clear either.
    const rows = await server.ctx.db.selectFrom('runtime_secrets').select('sealed_value').execute()
    for (const row of rows) {
      assert.ok(!Buffer.from(row.sealed_value).includes('maps-key-version'), 'the secret is sealed at rest')
    }
    const audit = await server.ctx.db
      .selectFrom('audit_events')
      .select(['action', 'details'])
      .where('action', 'like', 'integrity.secret.%')
      .execute()
    assert.ok(audit.some((a) => a.action === 'integrity.secret.deliver'))
    assert.ok(!JSON.stringify(audit).includes('maps-key-version'), 'the audit log never holds the value')
  })

  test('no integrity token, a limited token, no secrets key: no secret', async () => {
    const unattested = await phone()
    await assert.rejects(
      unattested.client.fetchSecret('maps-api-key', unattested.secretsKeys),
      (e: StrongroomError) => e.type === `${PROBLEMS}integrity/missing`,
    )
    const rooted = await phone({ ...clean, rooted: true })
    await rooted.attest()
    await assert.rejects(
      rooted.client.fetchSecret('maps-api-key', rooted.secretsKeys),
      (e: StrongroomError) => e.type === `${PROBLEMS}integrity/limited`,
    )
    const enrolled = await enrolDevice({ baseUrl: server.url, enrolmentCode: await bank.enrolmentCode(), label: 'n' })
    await enrolled.client.attest({ app, signals: clean })
    await assert.rejects(
      enrolled.client.fetchSecret('maps-api-key', await generateSecretsKeys()),
      (e: StrongroomError) => e.type === `${PROBLEMS}integrity/no-secrets-key`,
    )
    const device = await phone()
    await device.attest()
    await assert.rejects(device.client.fetchSecret('no-such-secret', device.secretsKeys), { status: 404 })
  })

  test('a sealed secret opens only with its device’s key, unaltered, as sealed for that device', async () => {
    const device = await phone()
    await device.attest()
    const sealed = await device.client.request<Parameters<typeof openRuntimeSecret>[1]>(
      'GET',
      '/v1/secrets/maps-api-key',
    )
    assert.ok(text(await openRuntimeSecret(device.secretsKeys, sealed)).startsWith('maps-key-version'))
    await assert.rejects(openRuntimeSecret(await generateSecretsKeys(), sealed))
    await assert.rejects(openRuntimeSecret(device.secretsKeys, { ...sealed, deviceId: 'dev_someone_else' }))
    await assert.rejects(openRuntimeSecret(device.secretsKeys, { ...sealed, version: sealed.version + 1 }))
    const tampered = Buffer.from(sealed.ciphertext, 'base64url')
    tampered[0] = (tampered[0] as number) ^ 1
    await assert.rejects(
      openRuntimeSecret(device.secretsKeys, { ...sealed, ciphertext: tampered.toString('base64url') }),
    )
  })

  test('only admins set secrets; staff cannot fetch them; bad input is refused', async () => {
    const agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    await assert.rejects(agent.request('PUT', '/v1/secrets/x', { value: b64('v') }), { status: 403 })
    await assert.rejects(agent.request('GET', '/v1/secrets/maps-api-key'), { status: 403 })
    await assert.rejects(admin.request('PUT', '/v1/secrets/bad name', { value: b64('v') }), { status: 400 })
    await assert.rejects(admin.request('PUT', '/v1/secrets/x', { value: '%%%' }), { status: 400 })
    const device = await phone()
    await assert.rejects(
      device.client.request('POST', '/v1/integrity/secrets-key', { publicJwk: { kty: 'EC', crv: 'P-384' } }),
      { status: 400 },
    )
  })
})
