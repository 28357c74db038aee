import assert from 'node:assert/strict'
import { createHash, X509Certificate } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import {
  attestationClientData,
  createDpopProof,
  DeviceClient,
  DeviceKey,
  type DeviceKeys,
  enrolAttestedDevice,
  enrolDevice,
  generateDeviceKeys,
  type MemberClient,
  StaffClient,
  StaffToken,
  type StrongroomError,
} from '@strongroom/sdk'
import { calculateJwkThumbprint } from 'jose'
import WebSocket from 'ws'
import { eventually } from '../testing/eventually.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { KeyOrigin, KeyPurpose } from './verifiers/android-key-description.ts'
import {
  buildAndroidChain,
  type KeyDescriptionScenario,
  TEST_SIGNING_DIGEST,
} from './verifiers/testing/android-chain-builder.ts'
import { buildAssertion, buildAttestation } from './verifiers/testing/app-attest-builder.ts'
import {
  buildPlayIntegrityToken,
  createPlayIntegrityKeys,
  type PlayVerdictScenario,
  playVerdictPayload,
} from './verifiers/testing/play-integrity-builder.ts'
import { createRoot, issue, type TestCertificate } from './verifiers/testing/test-pki.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'
const DAY = 86_400_000
const TEAM = 'ABCDE12345'
const APP_ID = 'com.bank.app'
const APPLE_APP_ID = `${TEAM}.${APP_ID}`
const quiet = { rooted: false, debugger: false, hooking: false, emulator: false }
/** What the genuine app's evidence covers: the challenge and the app identity it runs as (3.2.0 unless said). */
const bound = (challenge: string, appVersion = '3.2.0') =>
  attestationClientData(challenge, { appId: APP_ID, appVersion })
const sha256 = (text: string) => createHash('sha256').update(text).digest()
const boundDigest = (challenge: string, appVersion?: string) => sha256(bound(challenge, appVersion))
const pick = (granted: Granted) => [granted.scope, granted.reason]
// Certificates valid around today, whatever day the suite runs.
const validity = () => ({ notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 365 * DAY) })

interface Granted {
  integrityToken: string
  expiresIn: number
  scope: string
  reason: string
}

describe('hardware attestation through the server (App Attest, Android Key Attestation)', () => {
  let server: TestServer
  let bank: TestBank
  let appleRoot: TestCertificate
  let appleCa: TestCertificate
  let androidRoot: TestCertificate
  let androidCa: TestCertificate
  let revokedCa: TestCertificate

  before(async () => {
    appleRoot = await createRoot('CN=Test App Attestation Root', validity())
    appleCa = await issue(appleRoot, 'CN=Test App Attestation CA', { ca: true, ...validity() })
    androidRoot = await createRoot('CN=Test Android Root', validity())
    androidCa = await issue(androidRoot, 'CN=Test Android Intermediate', { ca: true, ...validity() })
    revokedCa = await issue(androidRoot, 'CN=Test Leaked Android Intermediate', { ca: true, ...validity() })
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sr-roots-'))
    writeFileSync(path.join(dir, 'apple.pem'), appleRoot.pem)
    writeFileSync(path.join(dir, 'android.pem'), androidRoot.pem)
    // Google's list format; the leaked intermediate's serial as Google writes it (lowercase hex, no leading zeros).
    const revokedSerial = new X509Certificate(revokedCa.der).serialNumber.toLowerCase().replace(/^0+/, '')
    const statusList = { entries: { [revokedSerial]: { status: 'REVOKED', reason: 'KEY_COMPROMISE' } } }
    writeFileSync(path.join(dir, 'status.json'), JSON.stringify(statusList))
    server = await startTestServer({
      integrityRequired: true,
      appleAttestRoots: path.join(dir, 'apple.pem'),
      androidAttestRoots: path.join(dir, 'android.pem'),
      androidAttestStatus: path.join(dir, 'status.json'),
    })
    bank = await createTestBank(server)
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    await admin.request('PUT', `/v1/apps/${APP_ID}`, {
      apple: { teamId: TEAM, bundleId: APP_ID },
      android: { packageName: APP_ID, signingCertificateSha256: [TEST_SIGNING_DIGEST.toString('hex')] },
    })
  })
  after(() => server.stop())

  async function device() {
    const enrolled = await enrolDevice({ baseUrl: server.url, enrolmentCode: await bank.enrolmentCode(), label: 'p' })
    const challenge = async () =>
      (await enrolled.client.request<{ challenge: string }>('POST', '/v1/integrity/challenges')).challenge
    const attest = (body: object) => enrolled.client.request<Granted>('POST', '/v1/integrity/attest', body)
    return { ...enrolled, challenge, attest }
  }

  const refusedFor = (reason: string) => (error: StrongroomError) =>
    error.type === `${PROBLEMS}integrity/invalid-evidence` && error.problem.detail === reason

  async function auditEvents(deviceId: string, action = 'integrity.attest') {
    return server.ctx.db
      .selectFrom('audit_events')
      .select(['reason', 'outcome', 'details'])
      .where('action', '=', action)
      .where('target_id', '=', deviceId)
      .orderBy('id')
      .execute()
  }

  async function auditReasons(deviceId: string) {
    return (await auditEvents(deviceId)).map((r) => `${r.outcome}:${r.reason}`)
  }

  test('an iPhone attests with App Attest, then renews with assertions whose counter must grow', async () => {
    const phone = await device()
    const challenge = await phone.challenge()
    const built = await buildAttestation(appleCa, {
      appId: APPLE_APP_ID,
      challenge: bound(challenge),
      leafValidity: validity(),
    })
    const base = { challenge, appId: APP_ID, appVersion: '3.2.0' }
    // The app says it may be an emulator; genuine App Attest hardware says otherwise, and that is what counts.
    const granted = await phone.attest({
      ...base,
      signals: { ...quiet, emulator: true },
      format: 'apple-appattest',
      attestationObject: built.attestationObject,
      keyId: built.keyId,
    })
    assert.deepEqual([granted.scope, granted.reason], ['full', 'ok'])

    const renewal = await phone.challenge()
    const assertion = buildAssertion(built.keys, APPLE_APP_ID, 1, bound(renewal))
    const body = { format: 'apple-appattest-assertion', appId: APP_ID, appVersion: '3.2.0', signals: quiet, assertion }
    const renewed = await phone.attest({ ...body, challenge: renewal })
    assert.equal(renewed.scope, 'full')
    // The same assertion again does not pass: not on its own challenge (used), and not on a fresh one (whose client
    // data it does not cover); and a fresh assertion whose counter did not grow does not either.
    await assert.rejects(phone.attest({ ...body, challenge: renewal }))
    await assert.rejects(phone.attest({ ...body, challenge: await phone.challenge() }), refusedFor('signature-invalid'))
    const replayed = await phone.challenge()
    await assert.rejects(
      phone.attest({
        ...body,
        challenge: replayed,
        assertion: buildAssertion(built.keys, APPLE_APP_ID, 1, bound(replayed)),
      }),
      refusedFor('counter-not-increasing'),
    )
    // A forged assertion from another key.
    const other = await buildAttestation(appleCa, { appId: APPLE_APP_ID, challenge: 'x', leafValidity: validity() })
    const next = await phone.challenge()
    await assert.rejects(
      phone.attest({ ...body, challenge: next, assertion: buildAssertion(other.keys, APPLE_APP_ID, 5, bound(next)) }),
      refusedFor('signature-invalid'),
    )
    assert.deepEqual((await auditReasons(phone.device.id)).slice(0, 2), ['success:ok', 'success:ok'])
    assert.ok((await auditReasons(phone.device.id)).includes('denied:signature-invalid'))
  })

  test('App Attest refusals: another app, an unregistered app, an untrusted root, a challenge never issued', async () => {
    const phone = await device()
    const send = (challenge: string, built: { attestationObject: string; keyId: string }, appId = APP_ID) =>
      phone.attest({
        format: 'apple-appattest',
        challenge,
        appId,
        appVersion: '3.2.0',
        signals: quiet,
        attestationObject: built.attestationObject,
        keyId: built.keyId,
      })
    const challenge = await phone.challenge()
    const forOtherApp = await buildAttestation(appleCa, {
      appId: `${TEAM}.com.evil.clone`,
      challenge: bound(challenge),
      leafValidity: validity(),
    })
    await assert.rejects(send(challenge, forOtherApp), refusedFor('app-id-mismatch'))
    const genuine = await buildAttestation(appleCa, {
      appId: APPLE_APP_ID,
      challenge: bound(challenge),
      leafValidity: validity(),
    })
    await assert.rejects(send(challenge, genuine, 'com.bank.unregistered'), refusedFor('app-not-registered'))
    const rogueRoot = await createRoot('CN=Rogue Root', validity())
    const rogueCa = await issue(rogueRoot, 'CN=Rogue CA', { ca: true, ...validity() })
    const rogue = await buildAttestation(rogueCa, {
      appId: APPLE_APP_ID,
      challenge: bound(challenge),
      leafValidity: validity(),
    })
    await assert.rejects(send(challenge, rogue), refusedFor('root-untrusted'))
    const invented = 'aW52ZW50ZWQtYnktdGhlLWNsaWVudA'
    const forInvented = await buildAttestation(appleCa, {
      appId: APPLE_APP_ID,
      challenge: bound(invented),
      leafValidity: validity(),
    })
    await assert.rejects(
      send(invented, forInvented),
      (e: StrongroomError) => e.problem.detail === 'the challenge is unknown, used or expired',
    )
    // The genuine attestation still works once, on its own challenge; not twice.
    assert.equal((await send(challenge, genuine)).scope, 'full')
    await assert.rejects(send(challenge, genuine))
  })

  /**
   * An Android app's enrolment, as a phone makes it: a challenge for the enrolment code, a device key generated with
   * SHA-256(clientData) as its attestation challenge (here: a chain the test builds as KeyMint would), and the
   * enrolment with that chain. `chainFor` lets a test present something else.
   */
  async function androidEnrolment(
    options: {
      scenario?: Partial<KeyDescriptionScenario>
      intermediate?: TestCertificate
      chainFor?: (challenge: string, keys: DeviceKeys) => Promise<string[]>
      challenge?: string
      enrolmentCode?: string
    } = {},
  ) {
    const enrolmentCode = options.enrolmentCode ?? (await bank.enrolmentCode())
    const challenge = options.challenge ?? (await enrolmentChallenge(enrolmentCode))
    const keys = await generateDeviceKeys()
    const leaf = { ...validity(), keys: keys as CryptoKeyPair }
    const built = async () =>
      (
        await buildAndroidChain(
          androidRoot,
          options.intermediate ?? androidCa,
          { challenge: boundDigest(challenge), ...options.scenario },
          { leaf },
        )
      ).chain
    const certificateChain = await (options.chainFor?.(challenge, keys) ?? built())
    const attestation = {
      format: 'android-key' as const,
      challenge,
      appId: APP_ID,
      appVersion: '3.2.0',
      certificateChain,
    }
    const enrolled = await enrolDevice({ baseUrl: server.url, enrolmentCode, label: 'pixel', keys, attestation })
    const attest = (appVersion = '3.2.0', signals = quiet) =>
      enrolled.client.attest({
        app: { appId: APP_ID, appVersion },
        signals,
        provider: async () => ({ format: 'android-key' }),
      })
    return { ...enrolled, enrolmentCode, challenge, attest }
  }

  async function enrolmentChallenge(enrolmentCode: string) {
    const response = await fetch(`${server.url}/v1/integrity/enrolment-challenges`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ enrolmentCode }),
    })
    assert.equal(response.status, 201)
    return ((await response.json()) as { challenge: string }).challenge
  }

  async function refusedEnrolment(attempt: Promise<unknown>, detail: string) {
    await assert.rejects(attempt, (e: StrongroomError) => {
      assert.equal(e.type, `${PROBLEMS}integrity/invalid-evidence`)
      assert.equal(e.problem.detail, detail)
      return true
    })
  }

  test('an Android phone enrols the key the Keystore attested with its enrolment challenge, then attests on it', async () => {
    const phone = await androidEnrolment()
    // The app reports root: the verified, locked boot the Keystore attested says it is not.
    const granted = await phone.attest('3.2.0', { ...quiet, rooted: true })
    assert.equal(granted.scope, 'full')
    const stored = await server.ctx.db
      .selectFrom('device_attestations')
      .select(['format', 'key_id', 'version_code', 'security_level'])
      .where('device_id', '=', phone.device.id)
      .executeTakeFirstOrThrow()
    assert.deepEqual(stored, {
      format: 'android-key',
      key_id: phone.device.keyThumbprint,
      version_code: 320,
      security_level: 'trusted-environment',
    })
    // Hooking is the app's own report, and the policy still denies it.
    await assert.rejects(
      phone.attest('3.2.0', { ...quiet, hooking: true }),
      (e: StrongroomError) => e.type === `${PROBLEMS}integrity/denied` && e.problem.detail === 'hooking-framework',
    )
    // A device enrolled without a chain has nothing attested to rest on.
    const plain = await device()
    await assert.rejects(
      plain.attest({
        format: 'android-key',
        challenge: await plain.challenge(),
        appId: APP_ID,
        appVersion: '3.2.0',
        signals: quiet,
      }),
      refusedFor('not-attested'),
    )
  })

  test('Android enrolment refusals, each audited, the code left usable: another key, another challenge, a used one', async () => {
    const enrolmentCode = await bank.enrolmentCode()
    const challenge = await enrolmentChallenge(enrolmentCode)
    const otherKeyChain = async (c: string) =>
      (await buildAndroidChain(androidRoot, androidCa, { challenge: boundDigest(c) }, { leaf: validity() })).chain
    await refusedEnrolment(androidEnrolment({ enrolmentCode, challenge, chainFor: otherKeyChain }), 'key-id-mismatch')
    const wrongChallenge = async (_c: string, keys: DeviceKeys) =>
      (
        await buildAndroidChain(
          androidRoot,
          androidCa,
          { challenge: boundDigest('a-challenge-the-server-never-issued') },
          { leaf: { ...validity(), keys: keys as CryptoKeyPair } },
        )
      ).chain
    await refusedEnrolment(
      androidEnrolment({ enrolmentCode, challenge, chainFor: wrongChallenge }),
      'challenge-mismatch',
    )
    const scenarios: [Partial<KeyDescriptionScenario>, string][] = [
      [{ origin: KeyOrigin.imported }, 'key-origin-not-generated'],
      [{ purposes: [KeyPurpose.sign, KeyPurpose.decrypt] }, 'key-purpose-invalid'],
      [{ signatureDigests: [Buffer.alloc(32, 7)] }, 'app-id-mismatch'],
      [{ packageName: 'com.bank.app.repackaged' }, 'app-id-mismatch'],
      [{ deviceLocked: false }, 'boot-state-unverified'],
    ]
    for (const [scenario, reason] of scenarios) {
      await refusedEnrolment(androidEnrolment({ enrolmentCode, challenge, scenario }), reason)
    }
    await refusedEnrolment(
      androidEnrolment({ enrolmentCode, challenge, intermediate: revokedCa }),
      'certificate-revoked',
    )
    await refusedEnrolment(
      androidEnrolment({ enrolmentCode, challenge, chainFor: async () => ['bm90IGEgY2VydA==', 'AAAA'] }),
      'bad-format',
    )
    // A challenge another code obtained does not enrol this code's device.
    const otherCode = await bank.enrolmentCode()
    await refusedEnrolment(
      androidEnrolment({ enrolmentCode: otherCode, challenge }),
      'the challenge is used or was issued for another enrolment',
    )
    // Each refusal is audited against the device the code reserved; the code still enrols, once, with the genuine key.
    const phone = await androidEnrolment({ enrolmentCode, challenge })
    assert.deepEqual(await auditReasons(phone.device.id), [
      'denied:key-id-mismatch',
      'denied:challenge-mismatch',
      'denied:key-origin-not-generated',
      'denied:key-purpose-invalid',
      'denied:app-id-mismatch',
      'denied:app-id-mismatch',
      'denied:boot-state-unverified',
      'denied:certificate-revoked',
      'denied:bad-format',
    ])
    // The challenge is used: another code cannot enrol with it, nor can the same one again.
    await refusedEnrolment(
      androidEnrolment({ enrolmentCode: await bank.enrolmentCode(), challenge }),
      'the challenge is unknown, used or expired',
    )
    await assert.rejects(
      fetch(`${server.url}/v1/integrity/enrolment-challenges`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ enrolmentCode }),
      }).then((r) => (r.ok ? r : Promise.reject(r.status))),
      (status) => status === 400,
    )
  })

  test('an enrolled Android device re-keys to a newly attested key after an update; the old key is done', async () => {
    const phone = await androidEnrolment()
    const deviceChallenge = async (client: MemberClient) =>
      (await client.request<{ challenge: string }>('POST', '/v1/integrity/challenges')).challenge
    const rekey = async (
      client: MemberClient,
      options: { keys?: DeviceKeys; challenge?: string; chainChallenge?: string } = {},
    ) => {
      const challenge = options.challenge ?? (await deviceChallenge(client))
      const keys = options.keys ?? (await generateDeviceKeys())
      const leaf = { ...validity(), keys: keys as CryptoKeyPair }
      const scenario = { challenge: boundDigest(options.chainChallenge ?? challenge, '3.3.0'), versionCode: 330 }
      const certificateChain = (await buildAndroidChain(androidRoot, androidCa, scenario, { leaf })).chain
      const body = { challenge, appId: APP_ID, appVersion: '3.3.0', certificateChain }
      const answer = await client.request<{
        token: { accessToken: string; expiresIn: number }
        keyThumbprint: string
        versionCode: number
      }>('POST', '/v1/integrity/rekey', body)
      return { answer, keys, challenge }
    }
    // The current key again is no re-key; a chain over another challenge is refused.
    await assert.rejects(rekey(phone.client, { keys: phone.keys }), refusedFor('key-unchanged'))
    await assert.rejects(rekey(phone.client, { chainChallenge: 'not-the-challenge' }), refusedFor('challenge-mismatch'))
    const { answer, keys, challenge } = await rekey(phone.client)
    assert.equal(answer.versionCode, 330)
    const credentials = new DeviceKey(keys, {
      accessToken: answer.token.accessToken,
      expiresIn: answer.token.expiresIn,
    })
    const rekeyed = new DeviceClient({ baseUrl: server.url, credentials })
    const granted = await rekeyed.attest({
      app: { appId: APP_ID, appVersion: '3.3.0' },
      signals: quiet,
      provider: async () => ({ format: 'android-key' }),
    })
    assert.equal(granted.scope, 'full')
    // The old key's token ended.
    await assert.rejects(deviceChallenge(phone.client), { status: 401 })
    // A used challenge does not re-key again.
    await assert.rejects(
      rekey(rekeyed, { challenge }),
      (e: StrongroomError) => e.problem.detail === 'the challenge is unknown, used or expired',
    )
    const audited = await server.ctx.db
      .selectFrom('audit_events')
      .select(['action', 'reason'])
      .where('target_id', '=', phone.device.id)
      .where('action', '=', 'device.rekey')
      .execute()
    assert.deepEqual(audited, [{ action: 'device.rekey', reason: 'android-key-attestation' }])
  })

  test('switching an Android versionCode off cannot be sidestepped by another versionName; Apple keys on the bound version', async () => {
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    const old = await androidEnrolment({ scenario: { versionCode: 310 } })
    const current = await androidEnrolment({ scenario: { versionCode: 320 } })
    await old.attest('3.1.0')
    assert.equal((await old.client.request<{ kind: string }>('GET', '/v1/me')).kind, 'device')
    await admin.request('POST', `/v1/apps/${APP_ID}/version-codes/310/deactivate`, { reason: 'CVE in build 310' })
    const deactivated = (e: StrongroomError) =>
      e.type === `${PROBLEMS}integrity/denied` && e.problem.detail === 'app-version-deactivated'
    // The token in hand stops working, and no versionName the app claims gets it another.
    await assert.rejects(old.client.request('GET', '/v1/me'), { status: 403 })
    for (const claimed of ['3.1.0', '3.1.1', '9.9.9']) await assert.rejects(old.attest(claimed), deactivated)
    // Build 320 claiming the switched-off build's versionName is not build 310.
    assert.equal((await current.attest('3.1.0')).scope, 'full')

    const iphone = await device()
    const appleChallenge = await iphone.challenge()
    const apple = await buildAttestation(appleCa, {
      appId: APPLE_APP_ID,
      challenge: bound(appleChallenge, '3.1.0'),
      leafValidity: validity(),
    })
    await iphone.attest({
      format: 'apple-appattest',
      appId: APP_ID,
      signals: quiet,
      keyId: apple.keyId,
      challenge: appleChallenge,
      appVersion: '3.1.0',
      attestationObject: apple.attestationObject,
    })
    await admin.request('POST', `/v1/apps/${APP_ID}/versions/3.1.0/deactivate`, { reason: 'CVE in 3.1.0' })
    // The genuine 3.1.0 app's assertion, sent with a claim of 3.1.1, does not verify; claiming 3.1.0 meets the switch.
    const renewal = await iphone.challenge()
    const assertion = buildAssertion(apple.keys, APPLE_APP_ID, 1, bound(renewal, '3.1.0'))
    const renewBody = { format: 'apple-appattest-assertion', appId: APP_ID, signals: quiet, assertion }
    await assert.rejects(
      iphone.attest({ ...renewBody, challenge: renewal, appVersion: '3.1.1' }),
      refusedFor('signature-invalid'),
    )
    await assert.rejects(iphone.attest({ ...renewBody, challenge: renewal, appVersion: '3.1.0' }), deactivated)
    const audited = (await auditEvents(old.device.id)).filter((row) => row.outcome === 'denied')
    assert.deepEqual(
      audited.map((row) => {
        const details = JSON.parse(String(row.details)) as { appVersion: string; versionCode: number }
        return [row.reason, details.appVersion, details.versionCode]
      }),
      [
        ['app-version-deactivated', '3.1.0', 310],
        ['app-version-deactivated', '3.1.1', 310],
        ['app-version-deactivated', '9.9.9', 310],
      ],
    )
  })

  test('where the policy asks, every gated request of an App Attest device carries an assertion whose counter grows', async () => {
    const strict = await createTestBank(server, 'Strict Bank')
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(strict.adminToken) })
    await admin.request('PUT', `/v1/apps/${APP_ID}`, { apple: { teamId: TEAM, bundleId: APP_ID } })
    const policy = { rooted: 'limited', emulator: 'limited', debugger: 'deny', hooking: 'deny' }
    const lifetimes = { fullLifetimeSeconds: 600, limitedLifetimeSeconds: 60 }
    await admin.request('PUT', '/v1/policies/integrity', { ...policy, ...lifetimes, required: true, assertions: true })
    const phone = await enrolDevice({
      baseUrl: server.url,
      enrolmentCode: await strict.enrolmentCode(),
      label: 'p',
      WebSocket: WebSocket as never,
    })
    let keys: CryptoKeyPair | undefined
    let counter = 0
    // What the native layer's generateAssertion returns; a test swaps in a rolled-back or misdirected one.
    let assertionFor = (clientData: string) =>
      buildAssertion(keys as CryptoKeyPair, APPLE_APP_ID, ++counter, clientData)
    const granted = await phone.client.attest({
      app: { appId: APP_ID, appVersion: '3.2.0' },
      signals: quiet,
      provider: async (clientData) => {
        const built = await buildAttestation(appleCa, {
          appId: APPLE_APP_ID,
          challenge: clientData,
          leafValidity: validity(),
        })
        keys = built.keys
        return { format: 'apple-appattest', attestationObject: built.attestationObject, keyId: built.keyId }
      },
      assertRequest: async (clientData) => assertionFor(clientData),
    })
    assert.equal(granted.scope, 'full')
    assert.equal((await phone.client.me()).deviceId, phone.device.id)
    assert.equal((await phone.client.me()).deviceId, phone.device.id)
    assert.equal(counter, 2)

    const refusedWith = (reason: string) => (e: StrongroomError) =>
      e.type === `${PROBLEMS}integrity/assertion-invalid` && e.problem.detail === reason
    // A counter rolled back (a cloned key state, or an old assertion) and one that does not move.
    assertionFor = (clientData) => buildAssertion(keys as CryptoKeyPair, APPLE_APP_ID, 1, clientData)
    await assert.rejects(phone.client.me(), refusedWith('counter-not-increasing'))
    assertionFor = (clientData) => buildAssertion(keys as CryptoKeyPair, APPLE_APP_ID, counter, clientData)
    await assert.rejects(phone.client.me(), refusedWith('counter-not-increasing'))
    // An assertion made for another request's proof.
    assertionFor = (clientData) => buildAssertion(keys as CryptoKeyPair, APPLE_APP_ID, ++counter, `${clientData}.`)
    await assert.rejects(phone.client.me(), refusedWith('signature-invalid'))
    // None at all.
    assertionFor = () => ''
    await assert.rejects(phone.client.me(), refusedWith('assertion-missing'))
    assertionFor = (clientData) => buildAssertion(keys as CryptoKeyPair, APPLE_APP_ID, ++counter, clientData)
    assert.equal((await phone.client.me()).deviceId, phone.device.id)
    // The stream's auth frame carries one over its own DPoP proof; without one the stream is refused.
    const stream = phone.client.stream()
    await stream.ready()
    stream.close()
    assertionFor = () => ''
    const errors: string[] = []
    const refused = phone.client.stream({ onError: (error) => errors.push(error.message) })
    await eventually(
      () => errors,
      (seen) => seen.length > 0,
    )
    assert.match(errors[0] ?? '', /assertion/)
    refused.close()

    const audited = await auditEvents(phone.device.id, 'integrity.assert')
    assert.deepEqual(
      audited.map((row) => row.reason),
      [
        'counter-not-increasing',
        'counter-not-increasing',
        'signature-invalid',
        'assertion-missing',
        'assertion-missing',
      ],
    )
  })

  test('Play Integrity verdicts, decrypted and verified with the keys the bank registered, feed the same policy', async () => {
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    const play = createPlayIntegrityKeys()
    const digest = TEST_SIGNING_DIGEST.toString('hex')
    await admin.request('PUT', `/v1/apps/${APP_ID}`, {
      apple: { teamId: TEAM, bundleId: APP_ID },
      android: { packageName: APP_ID, signingCertificateSha256: [digest], playIntegrity: play.registration },
    })
    const phone = await device()
    const attempt = async (scenario: Omit<PlayVerdictScenario, 'requestHash'>, tamper = false) => {
      const challenge = await phone.challenge()
      const requestHash = boundDigest(challenge).toString('base64url')
      let token = await buildPlayIntegrityToken(play, playVerdictPayload({ requestHash, ...scenario }))
      if (tamper) token = `${token.slice(0, -3)}${token.at(-3) === 'A' ? 'B' : 'A'}${token.slice(-2)}`
      const signals = { ...quiet, rooted: true }
      const body = { format: 'play-integrity', challenge, appId: APP_ID, appVersion: '3.2.0', signals }
      return phone.attest({ ...body, token })
    }
    const denied = (reason: string) => (e: StrongroomError) =>
      e.type === `${PROBLEMS}integrity/denied` && e.problem.detail === reason
    // The app reports root; Play says the device is genuine, and that is what counts.
    assert.deepEqual(pick(await attempt({ device: ['MEETS_DEVICE_INTEGRITY'] })), ['full', 'ok'])
    assert.deepEqual(pick(await attempt({ device: ['MEETS_BASIC_INTEGRITY'] })), ['read-only', 'rooted-device'])
    assert.deepEqual(pick(await attempt({ device: ['MEETS_VIRTUAL_INTEGRITY'] })), ['read-only', 'emulator'])
    assert.deepEqual(pick(await attempt({ licensing: 'UNLICENSED' })), ['read-only', 'app-unlicensed'])
    await assert.rejects(attempt({ appRecognition: 'UNRECOGNIZED_VERSION' }), denied('app-not-recognized'))
    await assert.rejects(attempt({ device: [] }), denied('device-integrity-failed'))
    await assert.rejects(attempt({}, true), refusedFor('token-undecryptable'))
    await assert.rejects(attempt({ digests: [Buffer.alloc(32, 5)] }), refusedFor('app-id-mismatch'))
    assert.deepEqual((await auditReasons(phone.device.id)).slice(-4), [
      'denied:app-not-recognized',
      'denied:device-integrity-failed',
      'denied:token-undecryptable',
      'denied:app-id-mismatch',
    ])
    const [granted] = await auditEvents(phone.device.id)
    assert.deepEqual(JSON.parse(String(granted?.details)), {
      format: 'play-integrity',
      securityLevel: 'play-device',
      appId: APP_ID,
      appVersion: '3.2.0',
      versionCode: 320,
      flags: [],
    })
    // A key that is no AES-256 key, or a verification key that is not EC P-256, is refused at registration.
    const android = { packageName: APP_ID, signingCertificateSha256: [digest] }
    const shortKey = { ...play.registration, decryptionKey: Buffer.alloc(31).toString('base64').padEnd(44, '=') }
    await assert.rejects(
      admin.request('PUT', `/v1/apps/${APP_ID}`, { android: { ...android, playIntegrity: shortKey } }),
      {
        status: 400,
      },
    )
  })

  /** Another bank with the app registered and its own integrity policy, so that switching versions off stays there. */
  async function bankWithApp(name: string, policy: object) {
    const other = await createTestBank(server, name)
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(other.adminToken) })
    await admin.request('PUT', `/v1/apps/${APP_ID}`, {
      apple: { teamId: TEAM, bundleId: APP_ID },
      android: { packageName: APP_ID, signingCertificateSha256: [TEST_SIGNING_DIGEST.toString('hex')] },
    })
    const signals = { rooted: 'limited', emulator: 'limited', debugger: 'deny', hooking: 'deny' }
    const lifetimes = { fullLifetimeSeconds: 600, limitedLifetimeSeconds: 60 }
    await admin.request('PUT', '/v1/policies/integrity', { ...signals, ...lifetimes, required: true, ...policy })
    return { ...other, admin }
  }

  /** The native Keystore as a test plays it: a new key, attested over SHA-256 of the client data, at a versionCode. */
  const keystore =
    (versionCode: number) =>
    async (clientData: string): Promise<{ keys: DeviceKeys; certificateChain: string[] }> => {
      const keys = await generateDeviceKeys()
      const leaf = { ...validity(), keys: keys as CryptoKeyPair }
      const scenario = { challenge: sha256(clientData), versionCode }
      return { keys, certificateChain: (await buildAndroidChain(androidRoot, androidCa, scenario, { leaf })).chain }
    }

  const denied = (reason: string) => (e: StrongroomError) =>
    e.type === `${PROBLEMS}integrity/denied` && e.problem.detail === reason

  // T300
  test('Android: the minimum and the switch go by the attested versionCode; a claim of another is refused, audited', async () => {
    const versions = await bankWithApp('Versions Bank', { minVersionCode: 320, minAppVersion: '3.2.0' })
    const old = await androidEnrolment({
      enrolmentCode: await versions.enrolmentCode(),
      scenario: { versionCode: 310 },
    })
    const current = await androidEnrolment({
      enrolmentCode: await versions.enrolmentCode(),
      scenario: { versionCode: 320 },
    })
    const claiming = (phone: typeof old, appVersion: string, versionCode?: number) =>
      phone.client.attest({
        app: { appId: APP_ID, appVersion },
        signals: quiet,
        provider: async () => ({ format: 'android-key', ...(versionCode ? { versionCode } : {}) }),
      })
    // Build 310 is below the minimum whatever versionName it claims, and claiming build 330 is refused.
    await assert.rejects(claiming(old, '9.9.9'), denied('app-version-below-minimum'))
    await assert.rejects(claiming(old, '3.3.0', 330), refusedFor('app-version-mismatch'))
    // Build 320 passes, even under a versionName below minAppVersion (a versionName is the app's word).
    assert.equal((await claiming(current, '1.0.0', 320)).scope, 'full')
    await versions.admin.request('POST', `/v1/apps/${APP_ID}/version-codes/320/deactivate`, { reason: 'CVE' })
    await assert.rejects(current.client.request('GET', '/v1/me'), { status: 403 })
    await assert.rejects(claiming(current, '3.2.0', 320), denied('app-version-deactivated'))
    await assert.rejects(claiming(current, '3.3.0', 330), refusedFor('app-version-mismatch'))
    await assert.rejects(claiming(current, '3.3.0'), denied('app-version-deactivated'))
    const refused = (await auditEvents(old.device.id)).filter((row) => row.reason === 'app-version-mismatch')
    assert.deepEqual(
      refused.map((row) => JSON.parse(String(row.details))),
      [
        {
          format: 'android-key',
          appId: APP_ID,
          appVersion: '3.3.0',
          claimedVersionCode: '330',
          versionCode: '310',
        },
      ],
    )
    assert.deepEqual(
      (await auditReasons(current.device.id)).filter((reason) => reason.startsWith('denied:')),
      ['denied:app-version-deactivated', 'denied:app-version-mismatch', 'denied:app-version-deactivated'],
    )
  })

  // T301
  test('App Attest: the version bound at attestation is what the minimum and the switch see; another is refused', async () => {
    const versions = await bankWithApp('Bound Versions Bank', { minAppVersion: '3.0.0' })
    const iphone = await enrolDevice({ baseUrl: server.url, enrolmentCode: await versions.enrolmentCode(), label: 'i' })
    const challenge = async () =>
      (await iphone.client.request<{ challenge: string }>('POST', '/v1/integrity/challenges')).challenge
    const attestKey = async (appVersion: string) => {
      const c = await challenge()
      const built = await buildAttestation(appleCa, {
        appId: APPLE_APP_ID,
        challenge: bound(c, appVersion),
        leafValidity: validity(),
      })
      const { attestationObject, keyId } = built
      const body = { format: 'apple-appattest', challenge: c, appId: APP_ID, appVersion, signals: quiet }
      return {
        built,
        granted: await iphone.client.request<Granted>('POST', '/v1/integrity/attest', {
          ...body,
          attestationObject,
          keyId,
        }),
      }
    }
    let counter = 0
    const renew = async (keys: CryptoKeyPair, appVersion: string) => {
      const c = await challenge()
      const assertion = buildAssertion(keys, APPLE_APP_ID, ++counter, bound(c, appVersion))
      const body = { format: 'apple-appattest-assertion', challenge: c, appId: APP_ID, appVersion, signals: quiet }
      return iphone.client.request<Granted>('POST', '/v1/integrity/attest', { ...body, assertion })
    }
    const first = await attestKey('3.1.0')
    assert.equal(first.granted.scope, 'full')
    assert.equal((await renew(first.built.keys, '3.1.0')).scope, 'full')
    // Updated to 3.2.0, the app signs its new version with the key attested for 3.1.0: refused, it attests a new key.
    await assert.rejects(renew(first.built.keys, '3.2.0'), refusedFor('app-version-mismatch'))
    await versions.admin.request('POST', `/v1/apps/${APP_ID}/versions/3.1.0/deactivate`, { reason: 'CVE in 3.1.0' })
    await assert.rejects(renew(first.built.keys, '3.1.0'), denied('app-version-deactivated'))
    const second = await attestKey('3.2.0')
    assert.equal(second.granted.scope, 'full')
    counter = 0
    assert.equal((await renew(second.built.keys, '3.2.0')).scope, 'full')
    const minimum = { rooted: 'limited', emulator: 'limited', debugger: 'deny', hooking: 'deny' }
    const lifetimes = { fullLifetimeSeconds: 600, limitedLifetimeSeconds: 60 }
    await versions.admin.request('PUT', '/v1/policies/integrity', { ...minimum, ...lifetimes, minAppVersion: '3.3.0' })
    await assert.rejects(renew(second.built.keys, '3.2.0'), denied('app-version-below-minimum'))
    const stored = await server.ctx.db
      .selectFrom('device_attestations')
      .select('bound_app_version')
      .where('device_id', '=', iphone.device.id)
      .executeTakeFirstOrThrow()
    assert.equal(stored.bound_app_version, '3.2.0')
    assert.ok((await auditReasons(iphone.device.id)).includes('denied:app-version-mismatch'))
  })

  // T302
  test('a bank that requires attestation at enrolment refuses a device without it; the SDK enrols with evidence', async () => {
    const strict = await bankWithApp('Attested Enrolment Bank', { attestEnrolment: true })
    const enrolmentCode = await strict.enrolmentCode()
    // Without evidence: 403 problem+json, audited against the device the code reserved; the code stays usable.
    const keys = await generateDeviceKeys()
    const htu = `${server.url}/v1/devices`
    const plain = await fetch(htu, {
      method: 'POST',
      headers: { 'content-type': 'application/json', dpop: await createDpopProof(keys, { htm: 'POST', htu }) },
      body: JSON.stringify({ enrolmentCode, label: 'no evidence' }),
    })
    assert.equal(plain.status, 403)
    assert.equal(plain.headers.get('content-type'), 'application/problem+json; charset=utf-8')
    assert.equal(((await plain.json()) as { type: string }).type, `${PROBLEMS}integrity/attestation-required`)
    const app = { appId: APP_ID, appVersion: '3.2.0' }
    const android = await enrolAttestedDevice({
      baseUrl: server.url,
      enrolmentCode,
      label: 'pixel',
      app,
      evidence: { platform: 'android', generateAttestedKey: keystore(320) },
    })
    const refusals = await server.ctx.db
      .selectFrom('audit_events')
      .select(['action', 'outcome', 'reason'])
      .where('target_id', '=', android.device.id)
      .where('outcome', '=', 'denied')
      .execute()
    assert.deepEqual(refusals, [{ action: 'device.enrol', outcome: 'denied', reason: 'attestation-required' }])
    const granted = await android.client.attest({
      app,
      signals: quiet,
      provider: async () => ({ format: 'android-key', versionCode: 320 }),
    })
    assert.equal(granted.scope, 'full')

    // iOS: App Attest over client data naming the enrolled device key; its key then renews by assertion.
    let appAttestKeys: CryptoKeyPair | undefined
    const attestKey = async (clientData: string) => {
      const built = await buildAttestation(appleCa, {
        appId: APPLE_APP_ID,
        challenge: clientData,
        leafValidity: validity(),
      })
      appAttestKeys = built.keys
      return { attestationObject: built.attestationObject, keyId: built.keyId }
    }
    const iphone = await enrolAttestedDevice({
      baseUrl: server.url,
      enrolmentCode: await strict.enrolmentCode(),
      label: 'iphone',
      app,
      evidence: { platform: 'apple', attestKey },
    })
    const renewed = await iphone.client.attest({
      app,
      signals: quiet,
      provider: async (clientData) => ({
        format: 'apple-appattest-assertion',
        assertion: buildAssertion(appAttestKeys as CryptoKeyPair, APPLE_APP_ID, 1, clientData),
      }),
    })
    assert.equal(renewed.scope, 'full')
    // An App Attest attestation naming another device key does not enrol this one.
    const elsewhere = await generateDeviceKeys()
    const otherThumbprint = await calculateJwkThumbprint(elsewhere.publicJwk)
    await assert.rejects(
      enrolAttestedDevice({
        baseUrl: server.url,
        enrolmentCode: await strict.enrolmentCode(),
        label: 'relayed',
        app,
        evidence: {
          platform: 'apple',
          attestKey: async (_clientData, challenge) =>
            attestKey(attestationClientData(challenge, app, { keyThumbprint: otherThumbprint })),
        },
      }),
      refusedFor('nonce-mismatch'),
    )
  })

  // T303
  test('client.rekey moves an updated Android app to a newly attested key, whose versionCode then counts', async () => {
    const versions = await bankWithApp('Rekey Bank', {})
    const phone = await enrolAttestedDevice({
      baseUrl: server.url,
      enrolmentCode: await versions.enrolmentCode(),
      label: 'pixel',
      app: { appId: APP_ID, appVersion: '3.1.0' },
      evidence: { platform: 'android', generateAttestedKey: keystore(310) },
    })
    const updated = { appId: APP_ID, appVersion: '3.3.0' }
    const attest = () =>
      phone.client.attest({
        app: updated,
        signals: quiet,
        provider: async () => ({ format: 'android-key', versionCode: 330 }),
      })
    // After the update, the claim of build 330 disagrees with the key attested at build 310: the app re-keys.
    await assert.rejects(attest(), refusedFor('app-version-mismatch'))
    const rekeyed = await phone.client.rekey({ app: updated, generateAttestedKey: keystore(330) })
    assert.equal(rekeyed.versionCode, 330)
    assert.equal(rekeyed.keyThumbprint, await calculateJwkThumbprint(rekeyed.keys.publicJwk))
    assert.equal((await attest()).scope, 'full')
    assert.equal((await phone.client.request<{ kind: string }>('GET', '/v1/me')).kind, 'device')
    // The old key is done: it gets no token.
    const oldKey = new DeviceClient({ baseUrl: server.url, credentials: new DeviceKey(phone.keys) })
    await assert.rejects(oldKey.request('POST', '/v1/integrity/challenges'), { status: 401 })
    // A chain over another challenge does not re-key, and the key stays the new one.
    const forged = async (clientData: string) => keystore(340)(`${clientData} and more`)
    await assert.rejects(
      phone.client.rekey({ app: updated, generateAttestedKey: forged }),
      refusedFor('challenge-mismatch'),
    )
    assert.equal((await attest()).scope, 'full')
  })

  test('registering apps is for admins, and checked', async () => {
    const agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    await assert.rejects(agent.request('PUT', '/v1/apps/com.x', { apple: { teamId: TEAM, bundleId: 'com.x' } }), {
      status: 403,
    })
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    await assert.rejects(admin.request('PUT', '/v1/apps/com.x', { apple: { teamId: 'short', bundleId: 'com.x' } }), {
      status: 400,
    })
    await assert.rejects(admin.request('PUT', '/v1/apps/com.x', {}), { status: 400 })
  })
})
