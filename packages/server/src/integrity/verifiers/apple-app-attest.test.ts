import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import { Decoder, encode } from 'cbor-x'
import { createAppleAppAttestVerifier, verifyAppAttestAssertion } from './apple-app-attest.ts'
import {
  type AttestationScenario,
  type BuiltAttestation,
  buildAssertion,
  buildAttestation,
  DEVELOPMENT_AAGUID,
} from './testing/app-attest-builder.ts'
import { appleDeviceSample } from './testing/apple-device-sample.ts'
import { createRoot, issue, TEST_NOW, type TestCertificate } from './testing/test-pki.ts'
import { AttestationError, type AttestationErrorCode, type AttestationInput } from './verifier.ts'

const app = { apple: { teamId: 'TEAM123456', bundleId: 'com.bank.app' } }
const appId = 'TEAM123456.com.bank.app'
const challenge = 'c2VydmVyLWNoYWxsZW5nZQ'
const cbor = new Decoder({ mapsAsObjects: false })

const failsWith = (code: AttestationErrorCode) => (error: unknown) => {
  assert.ok(error instanceof AttestationError, String(error))
  assert.equal(error.code, code)
  return true
}

describe('Apple App Attest attestation', () => {
  let root: TestCertificate
  let intermediate: TestCertificate
  let otherRoot: TestCertificate
  let verifier: ReturnType<typeof createAppleAppAttestVerifier>

  const input = (built: BuiltAttestation, overrides: Partial<AttestationInput> = {}): AttestationInput => ({
    evidence: { format: 'apple-appattest', attestationObject: built.attestationObject, keyId: built.keyId },
    challenge,
    app,
    ...overrides,
  })
  const attest = (scenario: Partial<AttestationScenario> = {}) =>
    buildAttestation(intermediate, { appId, challenge, ...scenario })

  before(async () => {
    root = await createRoot('CN=Test App Attestation Root CA')
    intermediate = await issue(root, 'CN=Test App Attestation CA 1', { ca: true })
    otherRoot = await createRoot('CN=Someone Else Root CA')
    verifier = createAppleAppAttestVerifier({ trustRootsPem: [root.pem], now: () => TEST_NOW })
  })

  test('a valid attestation gives the key, its id, the App ID and the production environment', async () => {
    const built = await attest()
    const result = await verifier.verify(input(built))
    const point = Buffer.from(await crypto.subtle.exportKey('raw', built.keys.publicKey))
    assert.equal(result.format, 'apple-appattest')
    assert.equal(result.appId, appId)
    assert.equal(result.securityLevel, 'secure-enclave')
    assert.equal(result.environment, 'production')
    assert.equal(result.counter, 0)
    assert.equal(result.keyId, Buffer.from(built.keyId, 'base64').toString('base64url'))
    assert.deepEqual(result.publicKeyJwk, {
      kty: 'EC',
      crv: 'P-256',
      x: point.subarray(1, 33).toString('base64url'),
      y: point.subarray(33).toString('base64url'),
    })
    assert.equal(result.receipt, Buffer.from('receipt').toString('base64url'))
    assert.equal(result.verifiedBoot, undefined)
  })

  test('a chain to another root is untrusted, and so is any test chain for the production verifier', async () => {
    const built = await attest()
    const trustingOther = createAppleAppAttestVerifier({ trustRootsPem: [otherRoot.pem], now: () => TEST_NOW })
    await assert.rejects(trustingOther.verify(input(built)), failsWith('root-untrusted'))
    const production = createAppleAppAttestVerifier({ now: () => TEST_NOW })
    await assert.rejects(production.verify(input(built)), failsWith('root-untrusted'))
  })

  test('a leaf signed by another CA than the one presented breaks the chain', async () => {
    const impostor = await issue(otherRoot, 'CN=Test App Attestation CA 1', { ca: true })
    const built = await buildAttestation(impostor, { appId, challenge })
    const attestation = cbor.decode(Buffer.from(built.attestationObject, 'base64url')) as Map<string, unknown>
    const statement = attestation.get('attStmt') as Map<string, Buffer[]>
    statement.set('x5c', [statement.get('x5c')?.[0] as Buffer, intermediate.der])
    const spliced = { ...built, attestationObject: encode(attestation).toString('base64url') }
    await assert.rejects(verifier.verify(input(spliced)), failsWith('chain-invalid'))
  })

  test('an expired or not yet valid credential certificate is refused', async () => {
    const expired = await attest({
      leafValidity: { notBefore: new Date('2025-01-01'), notAfter: new Date('2025-06-01') },
    })
    await assert.rejects(verifier.verify(input(expired)), failsWith('certificate-expired'))
    const future = await attest({
      leafValidity: { notBefore: new Date('2027-01-01'), notAfter: new Date('2028-01-01') },
    })
    await assert.rejects(verifier.verify(input(future)), failsWith('certificate-expired'))
  })

  test('tampered authData no longer matches the certified nonce', async () => {
    const built = await attest()
    const attestation = cbor.decode(Buffer.from(built.attestationObject, 'base64url')) as Map<string, unknown>
    const authData = Buffer.from(attestation.get('authData') as Buffer)
    authData[authData.length - 1] = (authData[authData.length - 1] ?? 0) ^ 1
    attestation.set('authData', authData)
    const tampered = { ...built, attestationObject: encode(attestation).toString('base64url') }
    await assert.rejects(verifier.verify(input(tampered)), failsWith('nonce-mismatch'))
  })

  test('an attestation for another challenge is refused', async () => {
    const built = await attest()
    await assert.rejects(verifier.verify(input(built, { challenge: 'another-challenge' })), failsWith('nonce-mismatch'))
    const stale = await attest({ nonceChallenge: 'an-older-challenge' })
    await assert.rejects(verifier.verify(input(stale)), failsWith('nonce-mismatch'))
  })

  test('an attestation for another App ID is refused', async () => {
    const built = await attest()
    const otherApp = { apple: { teamId: 'TEAM123456', bundleId: 'com.other.app' } }
    await assert.rejects(verifier.verify(input(built, { app: otherApp })), failsWith('app-id-mismatch'))
    const forOtherApp = await attest({ appId: 'OTHERTEAM1.com.bank.app' })
    await assert.rejects(verifier.verify(input(forOtherApp)), failsWith('app-id-mismatch'))
    await assert.rejects(verifier.verify(input(built, { app: {} })), failsWith('app-id-mismatch'))
  })

  test('the key id must be the hash of the certified key, both as the app names it and in authData', async () => {
    const built = await attest()
    const otherKeyId = Buffer.alloc(32, 7).toString('base64')
    await assert.rejects(verifier.verify(input({ ...built, keyId: otherKeyId })), failsWith('key-id-mismatch'))
    const wrongCredential = await attest({ credentialId: Buffer.alloc(32, 7) })
    await assert.rejects(verifier.verify(input(wrongCredential)), failsWith('key-id-mismatch'))
  })

  test('a key that already counted a signature is not fresh', async () => {
    const built = await attest({ counter: 1 })
    await assert.rejects(verifier.verify(input(built)), failsWith('counter-invalid'))
  })

  test('development keys are refused unless the verifier allows them; an unknown aaguid is malformed', async () => {
    const development = await attest({ aaguid: DEVELOPMENT_AAGUID })
    await assert.rejects(verifier.verify(input(development)), failsWith('environment-not-allowed'))
    const allowing = createAppleAppAttestVerifier({
      trustRootsPem: [root.pem],
      allowDevelopmentEnvironment: true,
      now: () => TEST_NOW,
    })
    assert.equal((await allowing.verify(input(development))).environment, 'development')
    const unknown = await attest({ aaguid: Buffer.alloc(16) })
    await assert.rejects(allowing.verify(input(unknown)), failsWith('bad-format'))
  })

  test('garbage of every shape is bad-format, never a crash', async () => {
    const built = await attest()
    const objects = [
      'not base64 at all!',
      '',
      Buffer.from('junk attestation data').toString('base64url'),
      encode(42).toString('base64url'),
      encode(new Map([['fmt', 'packed']])).toString('base64url'),
      encode(new Map([['fmt', 'apple-appattest']])).toString('base64url'),
      encode(
        new Map<string, unknown>([
          ['fmt', 'apple-appattest'],
          [
            'attStmt',
            new Map<string, unknown>([
              ['x5c', [Buffer.from('a'), Buffer.from('b')]],
              ['receipt', Buffer.alloc(1)],
            ]),
          ],
          ['authData', Buffer.alloc(10)],
        ]),
      ).toString('base64url'),
      built.attestationObject.slice(0, 200),
    ]
    for (const attestationObject of objects) {
      await assert.rejects(verifier.verify(input({ ...built, attestationObject })), failsWith('bad-format'))
    }
    await assert.rejects(verifier.verify(input({ ...built, keyId: '%%%' })), failsWith('bad-format'))
    const android = { format: 'android-key', certificateChain: [] } as const
    await assert.rejects(verifier.verify({ evidence: android, challenge, app }), failsWith('bad-format'))
  })

  test('errors carry a fixed message and nothing from the input', async () => {
    const built = await attest()
    const error = await verifier.verify(input(built, { challenge: 'secret-looking-input' })).catch((e: unknown) => e)
    assert.ok(error instanceof AttestationError)
    assert.equal(error.message, 'the attestation does not cover this challenge')
    assert.equal(error.name, 'AttestationError')
    assert.doesNotMatch(JSON.stringify({ ...error, message: error.message }), /secret-looking-input/)
  })
})

describe('Apple App Attest assertions', () => {
  let keys: CryptoKeyPair
  let publicKeyJwk: Awaited<ReturnType<ReturnType<typeof createAppleAppAttestVerifier>['verify']>>['publicKeyJwk']
  const clientData = JSON.stringify({ challenge: 'assertion-challenge', action: 'approve-payment' })

  before(async () => {
    const root = await createRoot('CN=Test App Attestation Root CA')
    const intermediate = await issue(root, 'CN=Test App Attestation CA 1', { ca: true })
    const built = await buildAttestation(intermediate, { appId, challenge })
    const verifier = createAppleAppAttestVerifier({ trustRootsPem: [root.pem], now: () => TEST_NOW })
    const result = await verifier.verify({
      evidence: { format: 'apple-appattest', attestationObject: built.attestationObject, keyId: built.keyId },
      challenge,
      app,
    })
    keys = built.keys
    publicKeyJwk = result.publicKeyJwk
  })

  const check = (assertion: string, previousCounter = 0, data: string = clientData) =>
    verifyAppAttestAssertion({ assertion, clientData: data, publicKeyJwk, app, previousCounter })

  test('an assertion with a higher counter verifies and returns the counter to store', () => {
    assert.deepEqual(check(buildAssertion(keys, appId, 1, clientData)), { counter: 1 })
    assert.deepEqual(check(buildAssertion(keys, appId, 9, clientData), 5), { counter: 9 })
  })

  test('a replayed or rewound counter is refused', () => {
    assert.throws(() => check(buildAssertion(keys, appId, 5, clientData), 5), failsWith('counter-not-increasing'))
    assert.throws(() => check(buildAssertion(keys, appId, 4, clientData), 5), failsWith('counter-not-increasing'))
  })

  test('a signature over other client data, or by another key, does not verify', async () => {
    assert.throws(() => check(buildAssertion(keys, appId, 1, clientData), 0, '{}'), failsWith('signature-invalid'))
    const { generateKeys } = await import('./testing/test-pki.ts')
    const otherKeys = await generateKeys()
    assert.throws(() => check(buildAssertion(otherKeys, appId, 1, clientData)), failsWith('signature-invalid'))
  })

  test('an assertion for another App ID is refused', () => {
    assert.throws(
      () => check(buildAssertion(keys, 'TEAM123456.com.other.app', 1, clientData)),
      failsWith('app-id-mismatch'),
    )
  })

  test('malformed assertions are bad-format', () => {
    for (const assertion of ['***', encode('x').toString('base64url'), encode(new Map()).toString('base64url')]) {
      assert.throws(() => check(assertion), failsWith('bad-format'))
    }
    const shortAuthData = encode(
      new Map([
        ['signature', Buffer.alloc(8)],
        ['authenticatorData', Buffer.alloc(8)],
      ]),
    ).toString('base64url')
    assert.throws(() => check(shortAuthData), failsWith('bad-format'))
  })
})

describe('a real App Attest attestation and assertion from a device', () => {
  const sample = appleDeviceSample
  const evidence = {
    format: 'apple-appattest',
    attestationObject: sample.attestationObject,
    keyId: sample.keyId,
  } as const
  const sampleApp = { apple: sample.appId }
  const atSampleTime = { now: () => sample.validAt, allowDevelopmentEnvironment: true }

  test('verifies up to the real Apple App Attestation Root CA', async () => {
    const result = await createAppleAppAttestVerifier(atSampleTime).verify({
      evidence,
      challenge: sample.challenge,
      app: sampleApp,
    })
    assert.equal(result.appId, '979F6L8R8M.org.reactjs.native.example.RNClientAttest')
    assert.equal(result.environment, 'development')
    assert.equal(result.keyId, Buffer.from(sample.keyId, 'base64').toString('base64url'))
    const { createPublicKey } = await import('node:crypto')
    assert.deepEqual(result.publicKeyJwk, createPublicKey(sample.publicKeyPem).export({ format: 'jwk' }))
    assert.deepEqual(
      verifyAppAttestAssertion({
        assertion: sample.assertion,
        clientData: sample.clientData,
        publicKeyJwk: result.publicKeyJwk,
        app: sampleApp,
        previousCounter: result.counter ?? 0,
      }),
      { counter: 1 },
    )
  })

  test('is refused as a development key, for another challenge, and once its certificate expired', async () => {
    const production = createAppleAppAttestVerifier({ now: () => sample.validAt })
    await assert.rejects(
      production.verify({ evidence, challenge: sample.challenge, app: sampleApp }),
      failsWith('environment-not-allowed'),
    )
    await assert.rejects(
      createAppleAppAttestVerifier(atSampleTime).verify({ evidence, challenge: 'other', app: sampleApp }),
      failsWith('nonce-mismatch'),
    )
    await assert.rejects(
      createAppleAppAttestVerifier({ ...atSampleTime, now: () => TEST_NOW }).verify({
        evidence,
        challenge: sample.challenge,
        app: sampleApp,
      }),
      failsWith('certificate-expired'),
    )
  })
})
