import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { CompactSign, calculateJwkThumbprint, compactVerify, importJWK, type JWK } from 'jose'
import { type ConsentRequest, consentPasskeyChallenge, consentSigningPayload, signConsent } from './consent.ts'

/** The consent signature test vector the docs publish for implementers of other clients. */
const vector = JSON.parse(
  readFileSync(new URL('../../../docs/vectors/consent-signature-v1.json', import.meta.url), 'utf8'),
) as {
  consent: Omit<ConsentRequest, 'status' | 'createdAt' | 'customerId'>
  payload: string
  devicePrivateJwk: JWK
  devicePublicJwk: JWK
  keyThumbprint: string
  jws: string
  passkeyChallenge: string
}
const consent = { ...vector.consent, status: 'pending', createdAt: '', customerId: '' } as ConsentRequest

test('the published vector: its key is RFC 8032’s TEST 1 key, and the payload is the request’s RFC 8785 form', async () => {
  assert.equal(
    Buffer.from(vector.devicePublicJwk.x as string, 'base64url').toString('hex'),
    'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  )
  assert.equal(consentSigningPayload(vector.consent), vector.payload)
  assert.equal(await calculateJwkThumbprint(vector.devicePublicJwk), vector.keyThumbprint)
  assert.equal(await consentPasskeyChallenge(vector.consent), vector.passkeyChallenge)
})

test('the SDK signs the vector’s request to exactly the published JWS (Ed25519 is deterministic)', async () => {
  const privateKey = (await importJWK(vector.devicePrivateJwk, 'EdDSA')) as CryptoKey
  const publicKey = (await importJWK(vector.devicePublicJwk, 'EdDSA')) as CryptoKey
  const jws = await signConsent(
    { algorithm: 'EdDSA', privateKey, publicKey, publicJwk: vector.devicePublicJwk },
    consent,
  )
  assert.equal(jws, vector.jws)
  const { payload } = await compactVerify(vector.jws, publicKey)
  assert.equal(new TextDecoder().decode(payload), vector.payload)
})

test('a cent more, another payee, or a reused challenge is another payload: the published signature does not cover it', async () => {
  const publicKey = await importJWK(vector.devicePublicJwk, 'EdDSA')
  const [header, , signature] = vector.jws.split('.') as [string, string, string]
  const changes = [
    { amount: { ...vector.consent.amount, value: vector.consent.amount.value + 1 } },
    { payee: { ...vector.consent.payee, account: 'GB33BUKB20201555555555' } },
    { challenge: 'another-one-time-challenge' },
  ]
  for (const change of changes) {
    const other = consentSigningPayload({ ...vector.consent, ...change })
    assert.notEqual(other, vector.payload)
    const forged = `${header}.${Buffer.from(other).toString('base64url')}.${signature}`
    await assert.rejects(compactVerify(forged, publicKey), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' })
  }
  // And a signature made by any other key over the same payload is not the device's.
  const { privateKey } = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])
  const foreign = await new CompactSign(new TextEncoder().encode(vector.payload))
    .setProtectedHeader({ alg: 'EdDSA' })
    .sign(privateKey)
  await assert.rejects(compactVerify(foreign, publicKey), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' })
})
