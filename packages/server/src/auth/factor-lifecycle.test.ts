import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  type EnrolledDevice,
  type MessageStream,
  type SecurityNotice,
  StaffClient,
  StaffToken,
  StrongroomError,
} from '@strongroom/sdk'
import { decodeJwt } from 'jose'
import { type TOTP, URI } from 'otpauth'
import { eventually } from '../testing/eventually.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { PROBLEMS } from '../testing/problems.ts'
import { SoftwareAuthenticator } from '../testing/software-authenticator.ts'

const isProblem = (kind: string, detail?: string | RegExp) => (e: unknown) => {
  assert.ok(e instanceof StrongroomError, String(e))
  assert.equal(e.type, PROBLEMS + kind)
  if (typeof detail === 'string') assert.equal(e.problem.detail, detail)
  if (detail instanceof RegExp) assert.match(e.problem.detail ?? '', detail)
  return true
}

/** Issue 15: a factor cannot be swapped out from under SCA by whoever holds one enrolled device. */
describe('factor lifecycle: adding, replacing and removing factors needs a step-up', () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient
  let d1: EnrolledDevice
  let d2: EnrolledDevice
  /** The customer's authenticator app, confirmed from d1 two days ago. */
  let authenticator: TOTP
  const notices = new Map<string, SecurityNotice[]>()
  const streams: MessageStream[] = []

  const openStream = async (label: string, device: EnrolledDevice) => {
    notices.set(label, [])
    const stream = device.client.stream({ onNotice: (notice) => notices.get(label)?.push(notice) })
    streams.push(stream)
    await stream.ready()
  }
  const noticeCount = (label: string, expected: number) =>
    eventually(
      () => notices.get(label)?.length ?? 0,
      (n) => n >= expected,
    )
  /**
   * A code of the app's current step, usable now: a step works once, so the tests play the clock moving on to a new
   * step by forgetting the last one used, rather than wait 30 s between codes.
   */
  const codeOf = async (totp: TOTP) => {
    await server.ctx.db
      .updateTable('totp_factors')
      .set({ last_used_step: -1 })
      .where('tenant_id', '=', bank.tenantId)
      .execute()
    return totp.generate()
  }
  const enrolApp = async (device: EnrolledDevice) => URI.parse((await device.client.enrolTotp()).otpauthUri) as TOTP
  const backdateFactors = (hours: number) =>
    server.ctx.db
      .updateTable('totp_factors')
      .set({ activated_at: new Date(Date.now() - hours * 3_600_000) })
      .where('tenant_id', '=', bank.tenantId)
      .execute()
  const ask = (value: number) =>
    agent.requestConsent({
      customerId: bank.customerId,
      amount: { value, currency: 'EUR' },
      payee: { name: 'ACME Ltd', account: 'DE89370400440532013000' },
      reference: 'invoice 7',
    })
  const auditActions = async (action: string) => {
    await server.flushAudit()
    return server.ctx.db
      .selectFrom('audit_events')
      .select(['outcome', 'reason', 'actor_kind'])
      .where('tenant_id', '=', bank.tenantId)
      .where('action', '=', action)
      .orderBy('id')
      .execute()
  }

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server, 'Lifecycle Bank')
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    d1 = await bank.enrol('d1')
    d2 = await bank.enrol('d2')
    const put = await fetch(`${server.url}/v1/policies/step-up`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${bank.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        rules: [
          {
            name: 'large payments',
            action: 'consent.approve',
            minAmount: { value: 100000, currency: 'EUR' },
            outcome: { require: ['totp'] },
          },
        ],
        factorCoolingOffHours: 24,
      }),
    })
    assert.equal(put.status, 200)
    // The first factor needs no step-up: there is nothing to prove it with.
    authenticator = await enrolApp(d1)
    await d1.client.confirmTotp(await codeOf(authenticator))
    await backdateFactors(48)
    await openStream('d1', d1)
    await openStream('d2', d2)
  })
  after(async () => {
    for (const stream of streams) stream.close()
    await server.stop()
  })

  test("the authenticator swap: d2 cannot replace d1's authenticator, and cannot approve EUR 5,000 with its own", async () => {
    const swapped = await enrolApp(d2)
    await assert.rejects(
      d2.client.confirmTotp(await codeOf(swapped)),
      isProblem('auth/step-up-required', 'requires the authenticator app or a passkey'),
    )
    // A made-up step-up code does not help either.
    await assert.rejects(
      d2.client.confirmTotp(await codeOf(swapped), { totpCode: '000000' }),
      isProblem('auth/invalid-code'),
    )

    const consent = await ask(500000)
    await assert.rejects(
      d2.client.approveConsent(await d2.client.getConsent(consent.id), { totpCode: await codeOf(swapped) }),
      isProblem('auth/invalid-code'),
    )
    assert.equal((await agent.getConsent(consent.id)).status, 'pending')
    // d1's authenticator still works: it is the one factor of the customer.
    const approved = await d1.client.approveConsent(await d1.client.getConsent(consent.id), {
      totpCode: await codeOf(authenticator),
    })
    assert.deepEqual((decodeJwt(approved.receipt as string) as { factors: string[] }).factors, ['device-key', 'totp'])
    const factors = await d2.client.listFactors()
    assert.deepEqual(
      factors.map((f) => [f.kind, f.status, f.coolingOffUntil]),
      [
        ['totp', 'active', null],
        ['totp', 'pending', null],
      ],
    )
    const refusals = await auditActions('factor.totp.add.step-up')
    assert.deepEqual(
      refusals.map((r) => [r.outcome, r.actor_kind]),
      [['denied', 'device']],
    )
    assert.deepEqual(notices.get('d1'), [])
  })

  test('removing a factor without a step-up, or with a wrong one, is refused and changes nothing', async () => {
    const [active] = (await d2.client.listFactors()).filter((f) => f.status === 'active')
    const factorId = active?.id as string
    const remove = (body: unknown) =>
      fetch(`${server.url}/v1/factors/${factorId}/remove`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    // Without credentials: refused before anything else.
    assert.equal((await remove({})).status, 401)
    await assert.rejects(
      d2.client.request('POST', `/v1/factors/${factorId}/remove`, {}),
      isProblem('auth/step-up-required'),
    )
    await assert.rejects(d2.client.removeFactor(factorId, { totpCode: '123456' }), isProblem('auth/invalid-code'))
    await assert.rejects(
      d2.client.request('POST', `/v1/factors/${factorId}/remove`, { stepUp: { totpCode: 'abc' } }),
      isProblem('request/invalid'),
    )
    // Staff cannot remove a single factor from a device route.
    await assert.rejects(
      agent.request('POST', `/v1/factors/${factorId}/remove`, { stepUp: { totpCode: await codeOf(authenticator) } }),
      isProblem('auth/forbidden'),
    )
    assert.ok((await d1.client.listFactors()).some((f) => f.id === factorId && f.status === 'active'))
    // Another tenant's device does not see it (the factor is looked up within the caller's customer).
    const other = await createTestBank(server, 'Other Lifecycle Bank')
    const stranger = await other.enrol('stranger')
    await assert.rejects(
      stranger.client.removeFactor(factorId, { totpCode: await codeOf(authenticator) }),
      isProblem('request/not-found'),
    )
  })

  test('replacing the authenticator with a step-up works; the new one cools off and other devices are told', async () => {
    const replacement = await enrolApp(d2)
    await d2.client.confirmTotp(await codeOf(replacement), { totpCode: await codeOf(authenticator) })
    // The old authenticator is gone.
    await assert.rejects(
      d1.client.request('POST', '/v1/factors/totp/verify', { code: await codeOf(authenticator) }),
      isProblem('auth/invalid-code'),
    )
    assert.equal(await noticeCount('d1', 1), 1)
    const [notice] = notices.get('d1') as SecurityNotice[]
    assert.deepEqual(
      { ...notice, at: undefined },
      { kind: 'factor-added', factor: 'totp', by: { kind: 'device', deviceId: d2.device.id }, at: undefined },
    )
    const [factor] = await agent.customerFactors(bank.customerId)
    assert.ok(factor?.coolingOffUntil, 'the console sees the new factor cooling off')
    assert.ok(Date.parse(factor.coolingOffUntil) > Date.now() + 23 * 3_600_000)

    // Cooling off: the new authenticator does not satisfy the EUR 5,000 step-up; a small payment needs none.
    const large = await ask(500000)
    await assert.rejects(
      d2.client.approveConsent(await d2.client.getConsent(large.id), { totpCode: await codeOf(replacement) }),
      isProblem('auth/step-up-required', 'the totp factor was added less than 24 hours ago'),
    )
    assert.equal((await agent.getConsent(large.id)).status, 'pending')
    await d2.client.approveConsent(await d2.client.getConsent((await ask(5000)).id))
    // Once the period has passed, it does.
    await backdateFactors(25)
    await d2.client.approveConsent(await d2.client.getConsent(large.id), { totpCode: await codeOf(replacement) })
    assert.equal((await agent.getConsent(large.id)).status, 'approved')
    authenticator = replacement
  })

  test('the staff-assisted reset: only with factors:reset, audited with the reason, every device told', async () => {
    await assert.rejects(agent.resetFactors(bank.customerId, 'lost phone'), isProblem('auth/forbidden'))
    const supervisor = new StaffClient({
      baseUrl: server.url,
      credentials: new StaffToken((await bank.staffToken('supervisor')).token),
    })
    await assert.rejects(supervisor.resetFactors(bank.customerId, ''), isProblem('request/invalid'))
    const before = { d1: notices.get('d1')?.length ?? 0, d2: notices.get('d2')?.length ?? 0 }
    assert.deepEqual(await supervisor.resetFactors(bank.customerId, 'customer lost the authenticator phone'), {
      removed: 1,
    })
    assert.deepEqual(await d1.client.listFactors(), [])
    assert.equal(await noticeCount('d1', before.d1 + 1), before.d1 + 1)
    assert.equal(await noticeCount('d2', before.d2 + 1), before.d2 + 1)
    assert.deepEqual(notices.get('d2')?.at(-1)?.by, { kind: 'staff' })
    assert.deepEqual(
      (await auditActions('factor.reset')).map((r) => [r.outcome, r.reason, r.actor_kind]),
      [['success', 'customer lost the authenticator phone', 'staff']],
    )
    // With nothing left to prove, the customer enrols afresh; the new factor cools off.
    const fresh = await enrolApp(d1)
    await d1.client.confirmTotp(await codeOf(fresh))
    const [factor] = await d1.client.listFactors()
    assert.ok(factor?.coolingOffUntil)
    authenticator = fresh
  })

  test('passkeys: a second one needs a passkey step-up, a code will not do; removal needs one too', async () => {
    const origin = (server.config.rpOrigins as string).split(',')[0] as string
    const rpId = server.config.rpId as string
    const first = new SoftwareAuthenticator({ origin, rpId })
    const second = new SoftwareAuthenticator({ origin, rpId })
    const stepUpWith = async (key: SoftwareAuthenticator) => ({
      passkey: key.assert(await d1.client.passkeyAuthenticationOptions()),
    })
    // The customer holds TOTP only: adding a passkey is proven with it (their strongest factor).
    await assert.rejects(
      d1.client.registerPasskey(first.register(await d1.client.passkeyRegistrationOptions())),
      isProblem('auth/step-up-required'),
    )
    await backdateFactors(48)
    await d1.client.registerPasskey(first.register(await d1.client.passkeyRegistrationOptions()), {
      totpCode: await codeOf(authenticator),
    })
    await server.ctx.db
      .updateTable('passkey_credentials')
      .set({ created_at: new Date(Date.now() - 48 * 3_600_000) })
      .where('tenant_id', '=', bank.tenantId)
      .execute()
    // Now the customer holds a passkey: another one needs a passkey, not a code.
    await assert.rejects(
      d2.client.registerPasskey(second.register(await d2.client.passkeyRegistrationOptions()), {
        totpCode: await codeOf(authenticator),
      }),
      isProblem('auth/step-up-required', 'requires a passkey'),
    )
    await d2.client.registerPasskey(
      second.register(await d2.client.passkeyRegistrationOptions()),
      await stepUpWith(first),
    )
    const passkeys = (await d1.client.listFactors()).filter((f) => f.kind === 'passkey')
    assert.equal(passkeys.length, 2)
    const newest = passkeys.at(-1)
    assert.ok(newest?.coolingOffUntil)
    const oldest = passkeys[0]?.id as string
    // The new passkey is cooling off: it proves no change to another factor, though it may remove itself.
    await assert.rejects(
      d2.client.removeFactor(oldest, await stepUpWith(second)),
      isProblem('auth/step-up-required', 'the factor presented was added less than 24 hours ago'),
    )
    await assert.rejects(
      d2.client.removeFactor(oldest, { totpCode: await codeOf(authenticator) }),
      isProblem('auth/step-up-required', 'requires a passkey'),
    )
    await d2.client.removeFactor(newest?.id as string, await stepUpWith(second))
    assert.deepEqual(
      (await d1.client.listFactors()).filter((f) => f.kind === 'passkey').map((f) => f.id),
      [oldest],
    )
    const removals = await eventually(
      () => notices.get('d1')?.filter((n) => n.kind === 'factor-removed').length,
      (n) => n === 1,
    )
    assert.equal(removals, 1)
    assert.deepEqual(
      (await auditActions('factor.passkey.remove')).map((r) => r.outcome),
      ['success'],
    )
  })
})
