import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, describe, test } from 'node:test'
import { createDpopProof, generateDeviceKeys } from '@strongroom/sdk'
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

describe('T390: the URL a DPoP proof names, where a public URL is configured (production always has one)', () => {
  const PUBLIC_URL = 'https://bank.example'
  let server: TestServer
  let bank: TestBank

  before(async () => {
    server = await startTestServer({ publicUrl: PUBLIC_URL, trustProxy: true })
    bank = await createTestBank(server, 'Public URL Bank')
  })
  after(() => server.stop())

  /** An enrolment POSTed to the node over plain http with the headers given, as a load balancer or an attacker sends it. */
  async function enrol(proofFor: string, headers: Record<string, string>) {
    const body = JSON.stringify({ enrolmentCode: await bank.enrolmentCode(), label: 'phone' })
    const dpop = await createDpopProof(await generateDeviceKeys(), { htm: 'POST', htu: `${proofFor}/v1/devices` })
    const { port } = new URL(server.url)
    return new Promise<{ status: number; type: string }>((resolve, reject) => {
      const request = http.request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/v1/devices',
          headers: { ...headers, dpop, 'content-type': 'application/json' },
        },
        (response) => {
          let text = ''
          response.on('data', (chunk) => {
            text += chunk
          })
          response.on('end', () => resolve({ status: response.statusCode ?? 0, type: JSON.parse(text).type }))
        },
      )
      request.on('error', reject)
      request.end(body)
    })
  }

  test('a proof made for another server is refused, though the Host or X-Forwarded-* headers name that server', async () => {
    const refused = { status: 401, type: `${PROBLEMS}auth/invalid-dpop-proof` }
    assert.deepEqual(await enrol('http://attacker.example', { host: 'attacker.example' }), refused)
    assert.deepEqual(
      await enrol('https://attacker.example', {
        host: 'attacker.example',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'attacker.example',
      }),
      refused,
    )
  })

  test('a proof for the public URL is accepted when TLS ends at the load balancer and it forwards over plain http', async () => {
    // HAProxy passes the Host on; with or without its X-Forwarded-Proto the node sees plain http.
    assert.equal((await enrol(PUBLIC_URL, { host: 'bank.example' })).status, 201)
    assert.equal((await enrol(PUBLIC_URL, { host: 'bank.example', 'x-forwarded-proto': 'https' })).status, 201)
  })

  test("a client given the node's own address (a failover list) makes proofs for it, HTTP and stream alike", async () => {
    const { client } = await bank.enrol('direct')
    assert.equal((await client.me()).kind, 'device')
    const stream = client.stream()
    await stream.ready()
    stream.close()
    // The node's address is what the connection reached, not a Host header: a proof for it sent by name is refused.
    assert.equal((await enrol(server.url, { host: 'bank.example' })).status, 401)
  })
})
