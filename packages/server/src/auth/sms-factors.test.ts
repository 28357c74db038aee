import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { enrolDevice, type MemberClient, StaffClient, StaffToken, type StrongroomError } from '@strongroom/sdk'
import { decodeJwt } from 'jose'
import { sql } from 'kysely'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { PROBLEMS, problemOf } from '../testing/problems.ts'

const BANK_NUMBER = '+442071838750'
const STRANGER = '+447700900999'

describe('SMS factors: one-time codes and yes/no consent by SMS reply', () => {
  let server: TestServer
  let bank: TestBank
  let admin: StaffClient
  let agent: StaffClient
  let phoneSeq = 100
  /** Every code that went out by SMS, to prove none is stored or audited in clear. */
  const codesSent: string[] = []

  const payment = {
    amount: { value: 125000, currency: 'EUR' },
    payee: { name: 'ACME Ltd', account: 'DE89370400440532013000' },
    reference: 'Invoice 2026-114',
  }

  async function post(path: string, body: unknown) {
    const response = await fetch(server.url + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    return { status: response.status, body: await response.json() }
  }
  const customerTexts = (from: string, text: string) =>
    post('/dev/simulator/phone/twilio/messages', { from, to: BANK_NUMBER, text })
  async function inbox(address: string): Promise<string[]> {
    const response = await fetch(
      `${server.url}/dev/simulator/phone/twilio/inbox?address=${encodeURIComponent(address)}`,
    )
    return ((await response.json()) as { messages: { text: string }[] }).messages.map((m) => m.text)
  }
  async function lastOtp(address: string): Promise<string> {
    const code = /code: (\d{6})\./.exec((await inbox(address)).at(-1) ?? '')?.[1]
    assert.ok(code, 'an SMS with a 6-digit code was sent')
    codesSent.push(code)
    return code
  }
  /** A customer with a number of their own (so limits and swaps of one test touch no other) and an enrolled phone. */
  async function newCustomer() {
    const phoneNumber = `+4477009${String(phoneSeq++).padStart(5, '0')}`
    const customer = await agent.request<{ id: string }>('POST', '/v1/customers', {
      externalRef: `SMS-${phoneSeq}`,
      displayName: 'Ada Customer',
      phoneNumber,
    })
    const { code } = await agent.issueEnrolmentCode(customer.id)
    const device = await enrolDevice({ baseUrl: server.url, enrolmentCode: code, label: 'phone' })
    return { id: customer.id, phoneNumber, device: device.client }
  }
  const sendOtp = (client: MemberClient, body: Record<string, unknown> = {}) =>
    client.request<{ expiresAt: string }>('POST', '/v1/factors/sms/send', body)
  const verifyOtp = (client: MemberClient, code: string, body: Record<string, unknown> = {}) =>
    client.request('POST', '/v1/factors/sms/verify', { code, ...body })
  const wrongCodeOf = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0')
  const invalidCode = (problem: StrongroomError) => {
    assert.equal(problem.status, 400)
    assert.equal(problem.type, `${PROBLEMS}auth/invalid-code`)
    return JSON.stringify(problem.problem)
  }

  before(async () => {
    server = await startTestServer({ publicUrl: 'https://bank.example' })
    bank = await createTestBank(server, 'SMS Bank')
    admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    await admin.request('PUT', '/v1/channels/twilio', {
      address: BANK_NUMBER,
      accountSid: `AC${'0'.repeat(31)}1`,
      agentId: bank.agentId,
      secrets: { authToken: 'twilio-auth-token-0123456789abcdef' },
    })
    await admin.request('PUT', '/v1/policies/step-up', {
      rules: [
        {
          name: 'large-needs-totp',
          action: 'consent.approve',
          minAmount: { value: 1_000_000, currency: 'EUR' },
          outcome: { require: ['totp'] },
        },
        {
          name: 'medium-needs-sms',
          action: 'consent.approve',
          minAmount: { value: 300_000, currency: 'EUR' },
          outcome: { require: ['sms-otp'] },
        },
      ],
      smsReplyMaxAmount: [{ value: 200_000, currency: 'EUR' }],
    })
  })
  after(() => server.stop())

  describe('SMS one-time codes', () => {
    test('a device gets a code by SMS and it works once', async () => {
      const customer = await newCustomer()
      const sent = await sendOtp(customer.device)
      assert.ok(Date.parse(sent.expiresAt) > Date.now())
      const code = await lastOtp(customer.phoneNumber)
      await verifyOtp(customer.device, code)
      invalidCode(await problemOf(verifyOtp(customer.device, code)))
    })

    test('staff send and check a code for a customer; an unknown customer looks like a wrong code', async () => {
      const customer = await newCustomer()
      await sendOtp(agent, { customerId: customer.id })
      const code = await lastOtp(customer.phoneNumber)
      const wrong = invalidCode(await problemOf(verifyOtp(agent, wrongCodeOf(code), { customerId: customer.id })))
      const unknown = invalidCode(await problemOf(verifyOtp(agent, code, { customerId: 'cus_AAAAAAAAAAAAAAAAAAAAAA' })))
      assert.equal(unknown, wrong)
      await verifyOtp(agent, code, { customerId: customer.id })
      // A device cannot ask on another customer's behalf.
      const other = await newCustomer()
      assert.equal((await problemOf(sendOtp(other.device, { customerId: customer.id }))).status, 403)
    })

    test('five wrong codes lock the code: the right one then fails the same way', async () => {
      const customer = await newCustomer()
      await sendOtp(customer.device)
      const code = await lastOtp(customer.phoneNumber)
      const failures = new Set<string>()
      for (let i = 0; i < 5; i++)
        failures.add(invalidCode(await problemOf(verifyOtp(customer.device, wrongCodeOf(code)))))
      failures.add(invalidCode(await problemOf(verifyOtp(customer.device, code))))
      assert.equal(failures.size, 1)
    })

    test('an expired code fails like a wrong one', async () => {
      const customer = await newCustomer()
      await sendOtp(customer.device)
      const code = await lastOtp(customer.phoneNumber)
      await server.ctx.db
        .updateTable('sms_otp_codes')
        .set({ expires_at: new Date(Date.now() - 1000) })
        .where('customer_id', '=', customer.id)
        .execute()
      invalidCode(await problemOf(verifyOtp(customer.device, code)))
    })

    test('resends: not within 30 s, at most three in 15 minutes; a new code replaces the old', async () => {
      const customer = await newCustomer()
      const backdate = (seconds: number) =>
        server.ctx.db
          .updateTable('sms_otp_codes')
          .set({ created_at: sql`created_at - ${`${seconds} seconds`}::interval` })
          .where('customer_id', '=', customer.id)
          .execute()
      await sendOtp(customer.device)
      const first = await lastOtp(customer.phoneNumber)
      const tooSoon = await problemOf(sendOtp(customer.device))
      assert.equal(tooSoon.status, 429)
      assert.equal(tooSoon.type, `${PROBLEMS}auth/sms-rate-limited`)
      await backdate(31)
      await sendOtp(customer.device)
      const second = await lastOtp(customer.phoneNumber)
      await backdate(31)
      await sendOtp(customer.device)
      await backdate(31)
      assert.equal((await problemOf(sendOtp(customer.device))).status, 429)
      assert.equal((await inbox(customer.phoneNumber)).length, 3)
      if (first !== second) invalidCode(await problemOf(verifyOtp(customer.device, first)))
      await verifyOtp(customer.device, await lastOtp(customer.phoneNumber))
    })

    test('a SIM swapped within the window: no SMS is sent', async () => {
      const customer = await newCustomer()
      const swapped = await fetch(`${server.url}/dev/camara/sim-swaps/${encodeURIComponent(customer.phoneNumber)}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ swappedAt: new Date(Date.now() - 3_600_000).toISOString() }),
      })
      assert.equal(swapped.status, 204)
      const refused = await problemOf(sendOtp(customer.device))
      assert.equal(refused.status, 403)
      assert.equal(refused.type, `${PROBLEMS}risk/sim-swapped`)
      assert.deepEqual(await inbox(customer.phoneNumber), [])
      const audit = await sql<{ reason: string }>`select reason from audit_events
        where action = 'risk.sim-swap.check' and target_id = ${customer.id}`.execute(server.ctx.db)
      assert.deepEqual(
        audit.rows.map((r) => r.reason),
        ['risk/sim-swapped'],
      )
    })

    test('the step-up policy: sms-otp satisfies a rule asking for it, never one asking for TOTP', async () => {
      const customer = await newCustomer()
      const medium = await agent.requestConsent({
        ...payment,
        amount: { value: 500_000, currency: 'EUR' },
        customerId: customer.id,
      })
      const missing = await problemOf(customer.device.approveConsent(medium))
      assert.equal(missing.type, `${PROBLEMS}auth/step-up-required`)
      assert.match(missing.problem.detail ?? '', /sms-otp/)
      await sendOtp(customer.device)
      const code = await lastOtp(customer.phoneNumber)
      const approved = await customer.device.approveConsent(medium, { smsCode: code })
      assert.equal(approved.status, 'approved')
      const claims = decodeJwt(approved.receipt as string) as { factors: string[]; policy: { assurance: string } }
      assert.deepEqual(claims.factors, ['device-key', 'sms-otp'])
      assert.equal(claims.policy.assurance, 'possession+sms-otp')

      const large = await agent.requestConsent({
        ...payment,
        amount: { value: 2_000_000, currency: 'EUR' },
        customerId: customer.id,
      })
      await server.ctx.db
        .updateTable('sms_otp_codes')
        .set({ created_at: sql`created_at - interval '1 minute'` })
        .where('customer_id', '=', customer.id)
        .execute()
      await sendOtp(customer.device)
      const refused = await problemOf(
        customer.device.approveConsent(large, { smsCode: await lastOtp(customer.phoneNumber) }),
      )
      assert.equal(refused.type, `${PROBLEMS}auth/step-up-required`)
      assert.match(refused.problem.detail ?? '', /totp/)
      assert.equal((await agent.getConsent(large.id)).status, 'pending')
    })
  })

  describe('consent by SMS reply', () => {
    async function askBySms(customer: Awaited<ReturnType<typeof newCustomer>>, amount = payment.amount) {
      const consent = await agent.requestConsent({ ...payment, amount, customerId: customer.id })
      await agent.request('POST', `/v1/consents/${consent.id}/sms-confirmation`)
      const text = (await inbox(customer.phoneNumber)).at(-1) ?? ''
      const code = /Reply YES (\d{4}) to approve/.exec(text)?.[1]
      assert.ok(code, text)
      codesSent.push(code)
      return { consent, code, text }
    }
    const statusOf = async (id: string) => (await agent.getConsent(id)).status

    test('"YES <code>" from the number on file approves, with a receipt naming sms-reply and the lower assurance', async () => {
      const customer = await newCustomer()
      const { consent, code, text } = await askBySms(customer)
      assert.match(text, /Reply YES \d{4} to approve EUR 1,250\.00 to ACME Ltd \(ref Invoice 2026-114\)/)
      const wrong = String((Number(code) + 1) % 10_000).padStart(4, '0')
      await customerTexts(customer.phoneNumber, `YES ${wrong}`)
      await customerTexts(STRANGER, `YES ${code}`)
      assert.equal(await statusOf(consent.id), 'pending')
      await customerTexts(customer.phoneNumber, `yes ${code}`)
      const approved = await agent.getConsent(consent.id)
      assert.equal(approved.status, 'approved')
      const claims = decodeJwt(approved.receipt as string) as Record<string, unknown>
      assert.equal(claims.factor, 'sms-reply')
      assert.deepEqual(claims.factors, ['sms-reply'])
      assert.equal(claims.deviceId, null)
      assert.deepEqual(claims.transaction, payment)
      assert.equal((claims.policy as { assurance: string }).assurance, 'sms-possession')
      // Replayed: nothing changes, and declining afterwards does nothing either.
      await customerTexts(customer.phoneNumber, `YES ${code}`)
      await customerTexts(customer.phoneNumber, `NO ${code}`)
      const after = await agent.getConsent(consent.id)
      assert.equal(after.status, 'approved')
      assert.equal(after.receipt, approved.receipt)
    })

    test('"NO <code>" declines', async () => {
      const customer = await newCustomer()
      const { consent, code } = await askBySms(customer)
      await customerTexts(customer.phoneNumber, `No ${code}`)
      assert.equal(await statusOf(consent.id), 'declined')
    })

    test('a late reply changes nothing', async () => {
      const customer = await newCustomer()
      const { consent, code } = await askBySms(customer)
      await server.ctx.db
        .updateTable('sms_confirmations')
        .set({ expires_at: new Date(Date.now() - 1000) })
        .where('consent_id', '=', consent.id)
        .execute()
      await customerTexts(customer.phoneNumber, `YES ${code}`)
      assert.equal(await statusOf(consent.id), 'pending')
    })

    test('three wrong codes void the confirmation: the right code then does nothing', async () => {
      const customer = await newCustomer()
      const { consent, code } = await askBySms(customer)
      const wrong = String((Number(code) + 5) % 10_000).padStart(4, '0')
      for (let i = 0; i < 3; i++) await customerTexts(customer.phoneNumber, `YES ${wrong}`)
      await customerTexts(customer.phoneNumber, `YES ${code}`)
      assert.equal(await statusOf(consent.id), 'pending')
    })

    test('above the SMS-reply limit, or with a swapped SIM, nothing is sent', async () => {
      const customer = await newCustomer()
      const big = await agent.requestConsent({
        ...payment,
        amount: { value: 250_000, currency: 'EUR' },
        customerId: customer.id,
      })
      const refused = await problemOf(agent.request('POST', `/v1/consents/${big.id}/sms-confirmation`))
      assert.equal(refused.status, 403)
      const small = await agent.requestConsent({ ...payment, customerId: customer.id })
      await fetch(`${server.url}/dev/camara/sim-swaps/${encodeURIComponent(customer.phoneNumber)}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ swappedAt: new Date().toISOString() }),
      })
      const swapped = await problemOf(agent.request('POST', `/v1/consents/${small.id}/sms-confirmation`))
      assert.equal(swapped.type, `${PROBLEMS}risk/sim-swapped`)
      assert.deepEqual(await inbox(customer.phoneNumber), [])
    })

    test('a swap between the request and the reply: the reply changes nothing', async () => {
      const customer = await newCustomer()
      const { consent, code } = await askBySms(customer)
      await fetch(`${server.url}/dev/camara/sim-swaps/${encodeURIComponent(customer.phoneNumber)}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ swappedAt: new Date().toISOString() }),
      })
      await customerTexts(customer.phoneNumber, `YES ${code}`)
      assert.equal(await statusOf(consent.id), 'pending')
    })
  })

  test('no code is stored, audited or logged in clear', async () => {
    assert.ok(codesSent.length >= 10)
    const audit = await sql<Record<string, unknown>>`select action, reason, details from audit_events`.execute(
      server.ctx.db,
    )
    const auditText = JSON.stringify(audit.rows)
    const messages = await sql<{ ciphertext: Uint8Array }>`select ciphertext from messages`.execute(server.ctx.db)
    const otpRows = await sql<{ code_hash: Uint8Array }>`select code_hash from sms_otp_codes`.execute(server.ctx.db)
    const hashes = new Set(otpRows.rows.map((r) => Buffer.from(r.code_hash).toString('hex')))
    for (const code of codesSent) {
      assert.doesNotMatch(auditText, new RegExp(`(?<![\\w:.-])${code}(?![\\w:.-])`))
      for (const row of messages.rows) {
        assert.ok(!Buffer.from(row.ciphertext).includes(`YES ${code}`))
        assert.ok(!Buffer.from(row.ciphertext).includes(code.length === 6 ? code : `YES ${code}`))
      }
      assert.ok(!hashes.has(createHash('sha256').update(code).digest('hex')))
    }
  })
})
