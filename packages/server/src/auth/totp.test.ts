import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { enrolDevice, StrongroomError } from '@strongroom/sdk'
import { HOTP, Secret, TOTP, URI } from 'otpauth'
import { operator } from '../audit/events.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { enrolTotp, verifyTotp } from './totp.ts'

const rfcSecret = Secret.fromLatin1('12345678901234567890')

test('RFC 4226 appendix D: HOTP values for counters 0 to 9', () => {
  const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489']
  const hotp = new HOTP({ secret: rfcSecret, digits: 6, algorithm: 'SHA1' })
  assert.deepEqual(
    expected.map((_, counter) => hotp.generate({ counter })),
    expected,
  )
})

test('RFC 6238 appendix B: TOTP values (SHA-1, 8 digits, 30 s steps)', () => {
  const vectors: [number, string][] = [
    [59, '94287082'],
    [1111111109, '07081804'],
    [1111111111, '14050471'],
    [1234567890, '89005924'],
    [2000000000, '69279037'],
    [20000000000, '65353130'],
  ]
  const totp = new TOTP({ secret: rfcSecret, digits: 8, period: 30, algorithm: 'SHA1' })
  for (const [seconds, code] of vectors) assert.equal(totp.generate({ timestamp: seconds * 1000 }), code, `${seconds}`)
})

describe('TOTP factors of customers', () => {
  let server: TestServer
  let bank: TestBank

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server, 'Totp Bank')
  })
  after(() => server.stop())

  const PROBLEM = 'https://strongroom.dev/problems/auth/invalid-code'
  const rejects = (promise: Promise<unknown>) =>
    assert.rejects(promise, (e: { kind?: string }) => e.kind === 'auth/invalid-code')

  test('a device enrols an authenticator app over HTTP and confirms it with its first code', async () => {
    const { client } = await enrolDevice({ baseUrl: server.url, enrolmentCode: await bank.enrolmentCode(), label: 'p' })
    const enrolment = await client.request<{ factorId: string; otpauthUri: string; qrCodeSvg: string }>(
      'POST',
      '/v1/factors/totp',
    )
    assert.match(enrolment.qrCodeSvg, /^<svg/)
    const totp = URI.parse(enrolment.otpauthUri) as TOTP
    assert.deepEqual([totp.issuer, totp.digits, totp.period, totp.algorithm], ['Totp Bank', 6, 30, 'SHA1'])
    await assert.rejects(
      client.request('POST', '/v1/factors/totp/verify', { code: totp.generate() }),
      (e) => e instanceof StrongroomError && e.type === PROBLEM,
    )
    const first = totp.generate()
    await client.request('POST', '/v1/factors/totp/confirm', { code: first })
    // The same code twice: the second is refused.
    await assert.rejects(
      client.request('POST', '/v1/factors/totp/verify', { code: first }),
      (e) => e instanceof StrongroomError && e.type === PROBLEM,
    )
    const row = await server.ctx.db
      .selectFrom('totp_factors')
      .selectAll()
      .where('id', '=', enrolment.factorId)
      .executeTakeFirstOrThrow()
    assert.equal(row.status, 'active')
    assert.ok(!Buffer.from(row.secret).toString('latin1').includes(totp.secret.base32))
  })

  test('each code works once, within ±1 step; five wrong codes lock the factor for fifteen minutes', async () => {
    const t0 = Date.UTC(2026, 10, 24, 12, 0, 0)
    // A customer of their own: the first test's already holds an active factor, which a confirmation may not replace.
    const { tenantId, customerId } = await createTestBank(server, 'Totp Window Bank')
    const { otpauthUri } = await enrolTotp(server.ctx, tenantId, customerId, 'Bank', operator)
    const totp = URI.parse(otpauthUri) as TOTP
    const code = (t: number) => totp.generate({ timestamp: t })
    const verify = (c: string, now: number, confirm = false) =>
      verifyTotp(server.ctx, tenantId, customerId, c, { confirm, actor: operator, now })

    await verify(code(t0), t0, true)
    await rejects(verify(code(t0), t0)) // replayed
    await rejects(verify(code(t0 - 30_000), t0)) // older than the last one used
    await verify(code(t0 + 30_000), t0) // the next step, within the window
    await rejects(verify(code(t0 + 90_000), t0)) // too far ahead
    for (let i = 0; i < 5; i++) await rejects(verify('000000', t0 + 60_000))
    await rejects(verify(code(t0 + 60_000), t0 + 60_000)) // right, but locked
    const later = t0 + 16 * 60_000
    await verify(code(later), later)
  })

  test('confirming a new authenticator never replaces the active one without a step-up', async () => {
    const { otpauthUri } = await enrolTotp(server.ctx, bank.tenantId, bank.customerId, 'Bank', operator)
    const swapped = URI.parse(otpauthUri) as TOTP
    const confirm = (replacing: boolean) =>
      verifyTotp(server.ctx, bank.tenantId, bank.customerId, swapped.generate(), {
        confirm: true,
        replacing,
        actor: operator,
      })
    await assert.rejects(confirm(false), (e: { kind?: string }) => e.kind === 'auth/step-up-required')
    const factors = await server.ctx.db
      .selectFrom('totp_factors')
      .select('status')
      .where('customer_id', '=', bank.customerId)
      .orderBy('created_at')
      .execute()
    assert.deepEqual(
      factors.map((f) => f.status),
      ['active', 'pending'],
    )
    const replaced = await confirm(true)
    assert.ok(replaced.activatedAt.getTime() > Date.now() - 5_000)
  })

  test('a customer without a factor gets the same answer as a wrong code', async () => {
    const other = await createTestBank(server, 'No Factor Bank')
    await rejects(verifyTotp(server.ctx, other.tenantId, other.customerId, '123456', { actor: operator }))
  })
})
