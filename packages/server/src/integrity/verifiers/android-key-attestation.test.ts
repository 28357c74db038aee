import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { before, describe, test } from 'node:test'
import { SecurityLevel, VerifiedBootState } from '@peculiar/asn1-android'
import { calculateJwkThumbprint } from 'jose'
import { createAndroidKeyAttestationVerifier } from './android-key-attestation.ts'
import { KeyOrigin, KeyPurpose } from './android-key-description.ts'
import {
  buildAndroidChain,
  KEY_DESCRIPTION_OID,
  type KeyDescriptionScenario,
  keyDescriptionDer,
  TEST_SIGNING_DIGEST,
} from './testing/android-chain-builder.ts'
import { GOOGLE_SAMPLE_CHAIN_PEM } from './testing/google-device-sample.ts'
import { createRoot, issue, TEST_NOW, type TestCertificate } from './testing/test-pki.ts'
import { AttestationError, type AttestationErrorCode, type AttestationInput, type ExpectedApp } from './verifier.ts'

const challenge = 'c2VydmVyLWNoYWxsZW5nZQ'
// As the Play Console shows it: uppercase hex with colons.
const signingDigest = [...TEST_SIGNING_DIGEST].map((byte) => byte.toString(16).padStart(2, '0').toUpperCase()).join(':')
const app: ExpectedApp = { android: { packageName: 'com.bank.app', signingCertificateSha256: [signingDigest] } }

const failsWith = (code: AttestationErrorCode) => (error: unknown) => {
  assert.ok(error instanceof AttestationError, String(error))
  assert.equal(error.code, code)
  return true
}

describe('Android key attestation', () => {
  let root: TestCertificate
  let intermediate: TestCertificate
  let verifier: ReturnType<typeof createAndroidKeyAttestationVerifier>

  const input = (chain: readonly string[], overrides: Partial<AttestationInput> = {}): AttestationInput => ({
    evidence: { format: 'android-key', certificateChain: chain },
    challenge,
    app,
    ...overrides,
  })
  const chainFor = async (scenario: Partial<KeyDescriptionScenario> = {}) =>
    (await buildAndroidChain(root, intermediate, { challenge, ...scenario })).chain

  before(async () => {
    root = await createRoot('CN=Test Hardware Attestation Root')
    intermediate = await issue(root, 'CN=Test Attestation Batch Key', { ca: true })
    verifier = createAndroidKeyAttestationVerifier({ trustRootsPem: [root.pem], now: () => TEST_NOW })
  })

  test('a valid chain gives the key, its thumbprint, the package and verified boot facts', async () => {
    const { chain, leaf } = await buildAndroidChain(root, intermediate, { challenge })
    const result = await verifier.verify(input(chain))
    const jwk = await crypto.subtle.exportKey('jwk', leaf.keys.publicKey)
    assert.deepEqual(result.publicKeyJwk, { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y })
    assert.equal(result.keyId, await calculateJwkThumbprint(result.publicKeyJwk))
    assert.equal(result.format, 'android-key')
    assert.equal(result.appId, 'com.bank.app')
    assert.equal(result.appVersionCode, 320)
    assert.equal(result.securityLevel, 'trusted-environment')
    assert.deepEqual(result.verifiedBoot, {
      state: 'verified',
      deviceLocked: true,
      osVersion: 140000,
      osPatchLevel: 202405,
    })
  })

  test('StrongBox keys say so', async () => {
    const chain = await chainFor({ securityLevel: SecurityLevel.strongBox })
    assert.equal((await verifier.verify(input(chain))).securityLevel, 'strongbox')
  })

  test('authorization tags a later KeyMint adds are skipped, not refused', async () => {
    // [800] EXPLICIT INTEGER 1 and [1000] EXPLICIT NULL: tags no current schema knows.
    const unknownTags = [Buffer.from('bf862003020101', 'hex'), Buffer.from('bf87680205 00'.replaceAll(' ', ''), 'hex')]
    const chain = await chainFor({ extraHardwareEntries: unknownTags })
    assert.equal((await verifier.verify(input(chain))).appId, 'com.bank.app')
  })

  test('a chain to another root is untrusted, and so is any test chain for the production verifier', async () => {
    const chain = await chainFor()
    const otherRoot = await createRoot('CN=Test Hardware Attestation Root')
    const trustingOther = createAndroidKeyAttestationVerifier({ trustRootsPem: [otherRoot.pem], now: () => TEST_NOW })
    await assert.rejects(trustingOther.verify(input(chain)), failsWith('root-untrusted'))
    const production = createAndroidKeyAttestationVerifier({ now: () => TEST_NOW })
    await assert.rejects(production.verify(input(chain)), failsWith('root-untrusted'))
  })

  test('the root is trusted by its key, whichever certificate for that key the device carries', async () => {
    const chain = await chainFor()
    // The device's own root certificate has expired, as Google's 2016 one does in May 2026: the key still anchors.
    const expiredRootCert = await issue(root, 'CN=Test Hardware Attestation Root', {
      ca: true,
      keys: root.keys,
      notBefore: new Date('2016-05-26'),
      notAfter: new Date('2025-05-24'),
    })
    const withOldRoot = [chain[0], chain[1], expiredRootCert.der.toString('base64')] as string[]
    assert.equal((await verifier.verify(input(withOldRoot))).appId, 'com.bank.app')
    // A chain that stops below the root verifies too.
    assert.equal((await verifier.verify(input(chain.slice(0, 2)))).appId, 'com.bank.app')
  })

  test('expired certificates are refused, leaf or intermediate', async () => {
    const { chain } = await buildAndroidChain(
      root,
      intermediate,
      { challenge },
      { leaf: { notBefore: new Date('2024-01-01'), notAfter: new Date('2025-01-01') } },
    )
    await assert.rejects(verifier.verify(input(chain)), failsWith('certificate-expired'))
    const oldIntermediate = await issue(root, 'CN=Old Batch Key', {
      ca: true,
      notBefore: new Date('2020-01-01'),
      notAfter: new Date('2025-01-01'),
    })
    const viaOld = await buildAndroidChain(root, oldIntermediate, { challenge })
    await assert.rejects(verifier.verify(input(viaOld.chain)), failsWith('certificate-expired'))
  })

  test('a revoked certificate in the chain is refused', async () => {
    const chain = await chainFor()
    const serial = new (await import('node:crypto')).X509Certificate(Buffer.from(chain[1] as string, 'base64'))
      .serialNumber
    const revoking = createAndroidKeyAttestationVerifier({
      trustRootsPem: [root.pem],
      now: () => TEST_NOW,
      isRevoked: (serialNumber) => serialNumber === serial.toLowerCase().replace(/^0+/, ''),
    })
    await assert.rejects(revoking.verify(input(chain)), failsWith('certificate-revoked'))
  })

  test('broken links are refused: a leaf from another CA, or an issuer that is no CA', async () => {
    const otherIntermediate = await issue(root, 'CN=Test Attestation Batch Key', { ca: true })
    const foreign = await buildAndroidChain(root, otherIntermediate, { challenge })
    const spliced = [foreign.chain[0], intermediate.der.toString('base64'), root.der.toString('base64')] as string[]
    await assert.rejects(verifier.verify(input(spliced)), failsWith('chain-invalid'))
    const notCa = await issue(root, 'CN=Not A CA')
    const viaNotCa = await buildAndroidChain(root, notCa, { challenge })
    await assert.rejects(verifier.verify(input(viaNotCa.chain)), failsWith('chain-invalid'))
  })

  test('a chain extended below a genuine attested key is refused: only the leaf may carry a KeyDescription', async () => {
    const genuine = await issue(intermediate, 'CN=Android Keystore Key', {
      ca: true,
      extensions: { [KEY_DESCRIPTION_OID]: keyDescriptionDer({ challenge: 'the attacker device challenge' }) },
    })
    const forged = await issue(genuine, 'CN=Forged Key', {
      extensions: { [KEY_DESCRIPTION_OID]: keyDescriptionDer({ challenge }) },
    })
    const chain = [forged, genuine, intermediate, root].map((certificate) => certificate.der.toString('base64'))
    await assert.rejects(verifier.verify(input(chain)), failsWith('chain-invalid'))
  })

  test('a KeyDescription for another challenge is refused', async () => {
    const chain = await chainFor({ challenge: 'an-older-challenge' })
    await assert.rejects(verifier.verify(input(chain)), failsWith('challenge-mismatch'))
    await assert.rejects(
      verifier.verify(input(await chainFor(), { challenge: 'other' })),
      failsWith('challenge-mismatch'),
    )
  })

  test('software keys are no hardware verdict, whichever of the two levels says so', async () => {
    const software = await chainFor({ securityLevel: SecurityLevel.software })
    await assert.rejects(verifier.verify(input(software)), failsWith('security-level-insufficient'))
    const softwareKeymaster = await chainFor({ keymasterSecurityLevel: SecurityLevel.software })
    await assert.rejects(verifier.verify(input(softwareKeymaster)), failsWith('security-level-insufficient'))
  })

  test('another package, an unknown signing certificate or no application id is another app', async () => {
    await assert.rejects(
      verifier.verify(input(await chainFor({ packageName: 'com.repackaged.app' }))),
      failsWith('app-id-mismatch'),
    )
    const resigned = await chainFor({ signatureDigests: [Buffer.alloc(32, 9)] })
    await assert.rejects(verifier.verify(input(resigned)), failsWith('app-id-mismatch'))
    const extraSigner = await chainFor({ signatureDigests: [TEST_SIGNING_DIGEST, Buffer.alloc(32, 9)] })
    await assert.rejects(verifier.verify(input(extraSigner)), failsWith('app-id-mismatch'))
    await assert.rejects(
      verifier.verify(input(await chainFor({ omitApplicationId: true }))),
      failsWith('app-id-mismatch'),
    )
    await assert.rejects(verifier.verify(input(await chainFor(), { app: {} })), failsWith('app-id-mismatch'))
  })

  test('an imported key, or one generated elsewhere, is refused: only a key born in the hardware counts', async () => {
    for (const origin of [KeyOrigin.imported, KeyOrigin.securelyImported, KeyOrigin.derived]) {
      await assert.rejects(verifier.verify(input(await chainFor({ origin }))), failsWith('key-origin-not-generated'))
    }
  })

  test('a key that may also decrypt, agree keys or attest other keys is no device signing key', async () => {
    const scenarios = [
      [KeyPurpose.sign, KeyPurpose.decrypt],
      [KeyPurpose.sign, KeyPurpose.agreeKey],
      [KeyPurpose.attestKey],
      [KeyPurpose.verify],
      [],
    ]
    for (const purposes of scenarios) {
      await assert.rejects(verifier.verify(input(await chainFor({ purposes }))), failsWith('key-purpose-invalid'))
    }
    const signAndVerify = await chainFor({ purposes: [KeyPurpose.sign, KeyPurpose.verify] })
    assert.equal((await verifier.verify(input(signAndVerify))).appId, 'com.bank.app')
  })

  test('an unverified, self-signed or failed boot, an unlocked bootloader or no root of trust is refused', async () => {
    const scenarios: Partial<KeyDescriptionScenario>[] = [
      { verifiedBootState: VerifiedBootState.unverified },
      { verifiedBootState: VerifiedBootState.selfSigned },
      { verifiedBootState: VerifiedBootState.failed },
      { deviceLocked: false },
      { omitRootOfTrust: true },
    ]
    for (const scenario of scenarios) {
      await assert.rejects(verifier.verify(input(await chainFor(scenario))), failsWith('boot-state-unverified'))
    }
  })

  test('garbage of every shape is bad-format, never a crash', async () => {
    const valid = await chainFor()
    const noExtension = await issue(intermediate, 'CN=Plain Key')
    const garbageExtension = await buildAndroidChain(
      root,
      intermediate,
      { challenge },
      { keyDescription: Buffer.from([0x30, 0x03, 0x02, 0x01]) },
    )
    const chains: unknown[] = [
      [],
      [valid[0]],
      ['not base64!', valid[1]],
      [Buffer.from('not a certificate').toString('base64'), valid[1]],
      [noExtension.der.toString('base64'), intermediate.der.toString('base64')],
      garbageExtension.chain,
      'a string, not a chain',
    ]
    for (const chain of chains) {
      await assert.rejects(verifier.verify(input(chain as string[])), failsWith('bad-format'))
    }
    const apple = { format: 'apple-appattest', attestationObject: 'oA', keyId: 'AA' } as const
    await assert.rejects(verifier.verify({ evidence: apple, challenge, app }), failsWith('bad-format'))
  })
})

describe('Android key attestation: a real device chain Google publishes', () => {
  const chain = (
    GOOGLE_SAMPLE_CHAIN_PEM.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  ).map((pem) => new X509Certificate(pem).raw.toString('base64'))
  const sampleApp: ExpectedApp = {
    android: {
      packageName: 'com.google.attestationexample',
      signingCertificateSha256: ['68856d1d06f637d6255face5b224db43a9514ace538bb1548b844480fcd85c87'],
    },
  }
  const during = new Date('2023-03-01T00:00:00Z')
  const input = (overrides: Partial<AttestationInput> = {}): AttestationInput => ({
    evidence: { format: 'android-key', certificateChain: chain },
    challenge: 'challenge',
    app: sampleApp,
    ...overrides,
  })

  test("verifies to Google's root with the production verifier: TEE, generated signing key, verified boot", async () => {
    const result = await createAndroidKeyAttestationVerifier({ now: () => during }).verify(input())
    assert.equal(chain.length, 5)
    assert.equal(result.securityLevel, 'trusted-environment')
    assert.equal(result.appId, 'com.google.attestationexample')
    assert.equal(result.appVersionCode, 1)
    assert.deepEqual(result.verifiedBoot, {
      state: 'verified',
      deviceLocked: true,
      osVersion: 130000,
      osPatchLevel: 202302,
    })
  })

  test('refused once its intermediates expired, when Google lists one, or for another app or challenge', async () => {
    await assert.rejects(createAndroidKeyAttestationVerifier().verify(input()), failsWith('certificate-expired'))
    const droidCa3 = new X509Certificate(Buffer.from(chain[1] as string, 'base64')).serialNumber.toLowerCase()
    const revoking = createAndroidKeyAttestationVerifier({
      now: () => during,
      isRevoked: (serial) => serial === droidCa3.replace(/^0+/, ''),
    })
    await assert.rejects(revoking.verify(input()), failsWith('certificate-revoked'))
    const verifier = createAndroidKeyAttestationVerifier({ now: () => during })
    await assert.rejects(verifier.verify(input({ app })), failsWith('app-id-mismatch'))
    await assert.rejects(verifier.verify(input({ challenge: 'another' })), failsWith('challenge-mismatch'))
  })
})
