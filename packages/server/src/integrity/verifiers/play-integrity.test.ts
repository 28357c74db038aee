import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { CompactEncrypt } from 'jose'
import { verifyPlayIntegrityToken } from './play-integrity.ts'
import { TEST_SIGNING_DIGEST } from './testing/android-chain-builder.ts'
import {
  buildPlayIntegrityToken,
  createPlayIntegrityKeys,
  type PlayVerdictScenario,
  playVerdictPayload,
} from './testing/play-integrity-builder.ts'
import { AttestationError, type AttestationErrorCode } from './verifier.ts'

const keys = createPlayIntegrityKeys()
const requestHash = 'n8v1Yv2n2mX2o1S0h0D3p9bq6m1w3kQfL0b3c8a2r4A'
const app = { packageName: 'com.bank.app', signingCertificateSha256: [TEST_SIGNING_DIGEST.toString('hex')] }
const now = new Date()

const failsWith = (code: AttestationErrorCode) => (error: unknown) => {
  assert.ok(error instanceof AttestationError, String(error))
  assert.equal(error.code, code)
  return true
}
const tokenFor = (scenario: Partial<PlayVerdictScenario> = {}) =>
  buildPlayIntegrityToken(keys, playVerdictPayload({ requestHash, ...scenario }))
const verify = (token: string, overrides: { requestHash?: string } = {}) =>
  verifyPlayIntegrityToken({ token, keys, app, requestHash, now, ...overrides })

describe('Play Integrity tokens (decrypted and verified on the server)', () => {
  test('a genuine verdict gives app recognition, device labels, licensing and the version code', async () => {
    const verdict = await verify(await tokenFor({ device: ['MEETS_DEVICE_INTEGRITY', 'MEETS_STRONG_INTEGRITY'] }))
    assert.deepEqual(verdict, {
      appRecognition: 'PLAY_RECOGNIZED',
      device: ['MEETS_DEVICE_INTEGRITY', 'MEETS_STRONG_INTEGRITY'],
      licensing: 'LICENSED',
      versionCode: 320,
    })
  })

  test('a tampered token, or one for another decryption key, does not decrypt', async () => {
    const token = await tokenFor()
    const parts = token.split('.')
    const ciphertext = parts[3] as string
    parts[3] = (ciphertext[0] === 'A' ? 'B' : 'A') + ciphertext.slice(1)
    await assert.rejects(verify(parts.join('.')), failsWith('token-undecryptable'))
    const other = createPlayIntegrityKeys()
    const forOther = await buildPlayIntegrityToken(
      { ...other, signingKey: keys.signingKey },
      playVerdictPayload({ requestHash }),
    )
    await assert.rejects(verify(forOther), failsWith('token-undecryptable'))
    // Direct encryption (no key wrapping) is not Google's format.
    const direct = await new CompactEncrypt(new TextEncoder().encode('x'))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .encrypt(keys.decryptionKey)
    await assert.rejects(verify(direct), failsWith('token-undecryptable'))
  })

  test('a verdict signed by another key, or not signed JSON, is refused', async () => {
    const forger = createPlayIntegrityKeys()
    const forged = await buildPlayIntegrityToken(
      { decryptionKey: keys.decryptionKey, signingKey: forger.signingKey },
      playVerdictPayload({ requestHash }),
    )
    await assert.rejects(verify(forged), failsWith('signature-invalid'))
    const unsigned = await new CompactEncrypt(
      new TextEncoder().encode(JSON.stringify(playVerdictPayload({ requestHash }))),
    )
      .setProtectedHeader({ alg: 'A256KW', enc: 'A256GCM' })
      .encrypt(keys.decryptionKey)
    await assert.rejects(verify(unsigned), failsWith('signature-invalid'))
    await assert.rejects(verify(await buildPlayIntegrityToken(keys, { requestDetails: 5 })), failsWith('bad-format'))
  })

  test('another request, package or signing certificate, or an old verdict, is refused', async () => {
    await assert.rejects(verify(await tokenFor(), { requestHash: 'another-request' }), failsWith('challenge-mismatch'))
    await assert.rejects(verify(await tokenFor({ packageName: 'com.bank.app.clone' })), failsWith('app-id-mismatch'))
    await assert.rejects(verify(await tokenFor({ digests: [Buffer.alloc(32, 3)] })), failsWith('app-id-mismatch'))
    const old = now.getTime() - 6 * 60_000
    await assert.rejects(verify(await tokenFor({ timestampMillis: old })), failsWith('token-stale'))
    const future = now.getTime() + 5 * 60_000
    await assert.rejects(verify(await tokenFor({ timestampMillis: future })), failsWith('token-stale'))
  })
})
