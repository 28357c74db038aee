import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import * as DPoP from 'dpop'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { PROBLEMS } from '../testing/problems.ts'
import { purgeExpiredProofs, verifyDpopProof } from './dpop.ts'

describe('DPoP proofs (RFC 9449)', () => {
  let server: TestServer
  let bank: TestBank

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server, 'DPoP Bank')
  })
  after(() => server.stop())

  const refusedAs = (kind: string) => (e: unknown) => (e as { kind?: string }).kind === kind

  test('issue 15: a used proof stays used until the last moment it could be accepted, and is refused after', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256')
    const iat = 1_790_000_000
    const proof = await new SignJWT({ jti: 'edge-of-the-window', htm: 'GET', htu: 'https://bank.example/v1/me' })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(publicKey) })
      .setIssuedAt(iat)
      .sign(privateKey)
    const at = (seconds: number) => new Date((iat + seconds) * 1000)
    const verify = (now: Date) =>
      verifyDpopProof(server.ctx, proof, { htm: 'GET', htu: 'https://bank.example/v1/me', now })

    // The proof passes for 60 s of age plus 60 s of tolerance, compared in whole seconds: up to iat + 120.999.
    await verify(at(120.9))
    // Housekeeping runs just before the window closes; the replay that follows must still be refused.
    await purgeExpiredProofs(server.ctx, at(120.95))
    await assert.rejects(verify(at(120.99)), refusedAs('auth/dpop-replay'))
    // Once the window has closed the proof is too old anyway, and only then may its jti be forgotten.
    await assert.rejects(verify(at(121)), refusedAs('auth/invalid-dpop-proof'))
    await purgeExpiredProofs(server.ctx, at(121))
    const left = await server.ctx.db
      .selectFrom('dpop_proofs')
      .select('jti')
      .where('jti', '=', 'edge-of-the-window')
      .execute()
    assert.deepEqual(left, [])
  })

  test("issue 15: proofs made by panva's dpop package with Ed25519 (RFC 9864's name) enrol a device and call the API", async () => {
    const keyPair = await DPoP.generateKeyPair('Ed25519')
    const enrolUrl = `${server.url}/v1/devices`
    const enrolProof = await DPoP.generateProof(keyPair, enrolUrl, 'POST')
    assert.equal(JSON.parse(Buffer.from(enrolProof.split('.')[0] as string, 'base64url').toString()).alg, 'Ed25519')
    const enrolled = await fetch(enrolUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', dpop: enrolProof },
      body: JSON.stringify({ enrolmentCode: await bank.enrolmentCode(), label: 'dpop package' }),
    })
    assert.equal(enrolled.status, 201, await enrolled.clone().text())
    const { token } = (await enrolled.json()) as { token: { accessToken: string } }

    const meUrl = `${server.url}/v1/me`
    const call = async (proof: string) =>
      fetch(meUrl, { headers: { authorization: `DPoP ${token.accessToken}`, dpop: proof } })
    const proof = await DPoP.generateProof(keyPair, meUrl, 'GET', undefined, token.accessToken)
    const me = await call(proof)
    assert.equal(me.status, 200)
    assert.equal(((await me.json()) as { kind: string }).kind, 'device')
    // The same proof again is a replay; a proof by another Ed25519 key does not match the token's key.
    const replay = await call(proof)
    assert.equal(replay.status, 401)
    assert.equal(((await replay.json()) as { type: string }).type, `${PROBLEMS}auth/dpop-replay`)
    const stranger = await DPoP.generateKeyPair('Ed25519')
    const foreign = await call(await DPoP.generateProof(stranger, meUrl, 'GET', undefined, token.accessToken))
    assert.equal(foreign.status, 401)
    assert.match(foreign.headers.get('www-authenticate') ?? '', /algs="ES256 EdDSA Ed25519"/)
  })
})
