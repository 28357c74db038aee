import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { enrolDevice, StaffClient, StaffToken, StrongroomError } from '@strongroom/sdk'
import type { StepUpPolicy } from '@strongroom/sdk/protocol'
import { decodeJwt } from 'jose'
import { type TOTP, URI } from 'otpauth'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { evaluateStepUp } from './step-up-policy.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'
const policy: StepUpPolicy = {
  rules: [
    {
      name: 'large payments',
      action: 'consent.approve',
      minAmount: { value: 100000, currency: 'EUR' },
      outcome: { require: ['totp'] },
    },
    {
      name: 'new devices',
      action: 'consent.approve',
      newDeviceHours: 24,
      minAmount: { value: 20000, currency: 'EUR' },
      outcome: { require: ['totp'] },
    },
    { name: 'rooted', action: 'consent.approve', riskFlags: ['rooted', 'emulator'], outcome: { deny: true } },
  ],
}

describe('the step-up policy, evaluated in one place', () => {
  const now = new Date('2026-11-24T12:00:00Z')
  const old = new Date('2026-01-01T00:00:00Z')
  const evaluate = (amount: number, currency = 'EUR', enrolled = old, riskFlags: string[] = []) =>
    evaluateStepUp(policy, {
      action: 'consent.approve',
      amount: { value: amount, currency },
      deviceEnrolledAt: enrolled,
      riskFlags,
      now,
    })

  test('rules whose conditions all hold apply; their requirements add up; a deny wins', () => {
    assert.deepEqual(evaluate(5000), { decision: 'allow', required: [], rules: [], reason: 'device key is enough' })
    assert.deepEqual(evaluate(150000).required, ['totp'])
    assert.deepEqual(evaluate(150000, 'GBP').required, [])
    assert.deepEqual(evaluate(30000, 'EUR', new Date('2026-11-24T06:00:00Z')).rules, ['new devices'])
    assert.deepEqual(evaluate(30000).rules, [])
    assert.deepEqual(evaluate(150000, 'EUR', new Date('2026-11-24T06:00:00Z')), {
      decision: 'allow',
      required: ['totp'],
      rules: ['large payments', 'new devices'],
      reason: 'requires totp',
    })
    assert.equal(evaluate(100, 'EUR', old, ['rooted']).decision, 'deny')
    assert.deepEqual(
      evaluateStepUp(
        { rules: [] },
        {
          action: 'consent.approve',
          amount: { value: 9e12, currency: 'EUR' },
          deviceEnrolledAt: now,
          riskFlags: ['rooted'],
        },
      ).decision,
      'allow',
    )
  })
})

describe('step-up on payment consent', () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient
  let phone: Awaited<ReturnType<typeof enrolDevice>>
  let totp: TOTP

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    phone = await enrolDevice({ baseUrl: server.url, enrolmentCode: await bank.enrolmentCode(), label: 'phone' })
    const enrolment = await phone.client.request<{ otpauthUri: string }>('POST', '/v1/factors/totp')
    totp = URI.parse(enrolment.otpauthUri) as TOTP
    await phone.client.request('POST', '/v1/factors/totp/confirm', {
      code: totp.generate({ timestamp: Date.now() - 30_000 }),
    })
    const put = await fetch(`${server.url}/v1/policies/step-up`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${bank.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ rules: [policy.rules[0]] }),
    })
    assert.equal(put.status, 200)
  })
  after(() => server.stop())

  const ask = (value: number) =>
    agent.requestConsent({
      customerId: bank.customerId,
      amount: { value, currency: 'EUR' },
      payee: { name: 'ACME Ltd', account: 'DE89370400440532013000' },
      reference: 'r',
    })

  test('a small payment needs the device key only', async () => {
    const consent = await ask(5000)
    const approved = await phone.client.approveConsent(await phone.client.getConsent(consent.id))
    assert.deepEqual((decodeJwt(approved.receipt as string) as { factors: string[] }).factors, ['device-key'])
  })

  test('a large payment needs the authenticator code too, and the receipt says so', async () => {
    const consent = await ask(500000)
    const seen = await phone.client.getConsent(consent.id)
    await assert.rejects(
      phone.client.approveConsent(seen),
      (e) =>
        e instanceof StrongroomError &&
        e.type === `${PROBLEMS}auth/step-up-required` &&
        e.problem.detail === 'requires totp',
    )
    await assert.rejects(
      phone.client.approveConsent(seen, { totpCode: '000000' }),
      (e) => e instanceof StrongroomError && e.type === `${PROBLEMS}auth/invalid-code`,
    )
    assert.equal((await agent.getConsent(consent.id)).status, 'pending')
    const approved = await phone.client.approveConsent(seen, { totpCode: totp.generate() })
    const claims = decodeJwt(approved.receipt as string) as {
      factors: string[]
      policy: { assurance: string; rules: string[] }
    }
    assert.deepEqual(claims.factors, ['device-key', 'totp'])
    assert.deepEqual([claims.policy.assurance, claims.policy.rules], ['possession+knowledge', ['large payments']])
  })

  test('only admins read and change the policy; a malformed policy is refused; changes are audited', async () => {
    const call = (method: string, token: string, body?: unknown) =>
      fetch(`${server.url}/v1/policies/step-up`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : null,
      })
    assert.equal((await call('GET', bank.agentToken)).status, 403)
    assert.equal((await (await call('GET', bank.adminToken)).json()).rules[0].name, 'large payments')
    const bad = await call('PUT', bank.adminToken, {
      rules: [{ name: 'x', action: 'consent.approve', outcome: { require: ['sms'] } }],
    })
    assert.equal(bad.status, 400)
    await server.flushAudit()
    const updates = await server.ctx.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'policy.step-up.update')
      .execute()
    assert.equal(updates.length, 1)
  })
})
