import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import {
  type ConsentRequest,
  consentPasskeyChallenge,
  type DeviceClient,
  enrolDevice,
  StaffClient,
  StaffToken,
  StrongroomError,
} from '@strongroom/sdk'
import type { StepUpPolicy } from '@strongroom/sdk/protocol'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { assessFactors, evaluateStepUp } from '../auth/step-up-policy.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { SoftwareAuthenticator, tamperSignature } from '../testing/software-authenticator.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'
const verifier = path.resolve(import.meta.dirname, '../../../../scripts/verify-receipt.js')
const isProblem = (kind: string) => (e: unknown) => {
  assert.ok(e instanceof StrongroomError, String(e))
  assert.equal(e.type, PROBLEMS + kind)
  return true
}

describe('the step-up policy counts a passkey with user verification as a strong factor', () => {
  const policy: StepUpPolicy = {
    rules: [
      {
        name: 'large',
        action: 'consent.approve',
        minAmount: { value: 100000, currency: 'EUR' },
        outcome: { require: ['totp'] },
      },
      {
        name: 'huge',
        action: 'consent.approve',
        minAmount: { value: 1000000, currency: 'EUR' },
        outcome: { require: ['passkey'] },
      },
    ],
  }
  const decide = (value: number) =>
    evaluateStepUp(policy, {
      action: 'consent.approve',
      amount: { value, currency: 'EUR' },
      deviceEnrolledAt: new Date(0),
      riskFlags: [],
    })
  const deviceKey = { factor: 'device-key' } as const
  const totp = { factor: 'totp' } as const
  const passkey = (userVerified: boolean) => ({ factor: 'passkey', userVerified }) as const

  test('what satisfies what, decided in one place', () => {
    assert.deepEqual(assessFactors(decide(100), [deviceKey]), {
      missing: [],
      used: ['device-key'],
      assurance: 'possession',
    })
    assert.deepEqual(
      assessFactors(decide(100), [deviceKey, totp]).used,
      ['device-key'],
      'a code not needed is not relied on',
    )
    assert.deepEqual(assessFactors(decide(200000), [deviceKey]).missing, ['totp'])
    assert.deepEqual(assessFactors(decide(200000), [deviceKey, totp]), {
      missing: [],
      used: ['device-key', 'totp'],
      assurance: 'possession+knowledge',
    })
    assert.deepEqual(assessFactors(decide(200000), [passkey(true)]), {
      missing: [],
      used: ['passkey'],
      assurance: 'possession+user-verification',
    })
    assert.deepEqual(
      assessFactors(decide(200000), [passkey(false)]).missing,
      ['totp'],
      'without UV it is possession only',
    )
    assert.deepEqual(assessFactors(decide(2000000), [deviceKey, totp]).missing, ['passkey'])
    assert.deepEqual(assessFactors(decide(2000000), [passkey(true)]).missing, [])
  })
})

describe('consent approval by passkey', () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient
  let phone: Awaited<ReturnType<typeof enrolDevice>>
  let key: SoftwareAuthenticator
  let secondKey: SoftwareAuthenticator
  let strangerKey: SoftwareAuthenticator

  const payment = {
    amount: { value: 125000, currency: 'EUR' },
    payee: { name: 'ACME Ltd', account: 'DE89370400440532013000' },
    reference: 'Invoice 2026-114',
  }

  const newKey = () =>
    new SoftwareAuthenticator({
      origin: (server.config.rpOrigins as string).split(',')[0] as string,
      rpId: 'localhost',
    })
  /** Registers a passkey; a customer who holds one already proves it (`held`) to add another (issue 15). */
  const register = async (client: DeviceClient, held?: SoftwareAuthenticator) => {
    const authenticator = newKey()
    const stepUp = held ? { passkey: held.assert(await client.passkeyAuthenticationOptions()) } : undefined
    await client.registerPasskey(authenticator.register(await client.passkeyRegistrationOptions()), stepUp)
    return authenticator
  }
  const ask = async (amount = payment.amount) =>
    phone.client.getConsent((await agent.requestConsent({ customerId: bank.customerId, ...payment, amount })).id)
  /** The assertion a browser would make for this consent, after showing it: challenge = SHA-256 of its payload. */
  const assertionFor = async (authenticator: SoftwareAuthenticator, consent: ConsentRequest, overrides = {}) =>
    authenticator.assert({ challenge: await consentPasskeyChallenge(consent) }, overrides)
  const approve = (consentId: string, assertion: unknown) =>
    phone.client.request<ConsentRequest>('POST', `/v1/consents/${consentId}/approve/passkey`, { assertion })
  const setPolicy = async (rules: StepUpPolicy['rules']) => {
    const response = await fetch(`${server.url}/v1/policies/step-up`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${bank.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ rules }),
    })
    assert.equal(response.status, 200)
  }

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    phone = await enrolDevice({ baseUrl: server.url, enrolmentCode: await bank.enrolmentCode(), label: 'phone' })
    key = await register(phone.client)
    secondKey = await register(phone.client, key)
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    const stranger = await admin.createCustomer({ externalRef: 'REF-stranger', displayName: 'Eve Stranger' })
    const strangerPhone = await enrolDevice({
      baseUrl: server.url,
      enrolmentCode: (await admin.issueEnrolmentCode(stranger.id)).code,
      label: 'eve',
    })
    strangerKey = await register(strangerPhone.client)
  })
  after(() => server.stop())

  test('approved with a passkey: the receipt verifies offline and says passkey, with user verification', async () => {
    const consent = await ask()
    const approved = await phone.client.approveConsentWithPasskey(consent.id, await assertionFor(key, consent))
    assert.equal(approved.status, 'approved')
    const jwks = await (await fetch(`${server.url}/.well-known/jwks.json`)).json()
    const { payload } = await jwtVerify(approved.receipt as string, createLocalJWKSet(jwks), {
      issuer: 'strongroom',
      typ: 'strongroom-receipt+jwt',
    })
    assert.equal(payload.sub, consent.id)
    assert.deepEqual(payload.transaction, payment)
    assert.equal(payload.factor, 'passkey')
    assert.deepEqual(payload.factors, ['passkey'])
    assert.deepEqual(payload.passkey, { credentialId: key.id, userVerified: true, backedUp: false })
    assert.equal(payload.deviceId, phone.device.id)
    assert.equal(payload.keyThumbprint, undefined)
    assert.equal((payload.policy as { assurance: string }).assurance, 'possession+user-verification')

    const dir = mkdtempSync(path.join(os.tmpdir(), 'sr-passkey-receipt-'))
    writeFileSync(path.join(dir, 'receipt.jws'), approved.receipt as string)
    writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify(jwks))
    const ok = spawnSync(process.execPath, [verifier, path.join(dir, 'receipt.jws'), path.join(dir, 'jwks.json')], {
      encoding: 'utf8',
    })
    assert.equal(ok.status, 0, ok.stderr)
    assert.equal(JSON.parse(ok.stdout).factor, 'passkey')

    await server.flushAudit()
    const audited = await server.ctx.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'consent.approve')
      .where('target_id', '=', consent.id)
      .execute()
    assert.deepEqual(
      audited.map((e) => [e.outcome, JSON.parse(e.details).factors]),
      [['success', ['passkey']]],
    )
    // Used once: the same assertion, or a fresh one, cannot approve it again.
    await assert.rejects(approve(consent.id, await assertionFor(key, consent)), isProblem('consent/already-decided'))
  })

  test('an assertion over a changed amount, currency, payee, reference or challenge is refused and decides nothing', async () => {
    const consent = await ask()
    const changes: Partial<ConsentRequest>[] = [
      { amount: { value: 125001, currency: 'EUR' } },
      { amount: { value: 125000, currency: 'GBP' } },
      { payee: { name: 'ACME Ltd.', account: 'DE89370400440532013000' } },
      { payee: { name: 'ACME Ltd', account: 'GB33BUKB20201555555555' } },
      { reference: 'Invoice 2026-115' },
      { challenge: 'A'.repeat(43) },
    ]
    for (const change of changes) {
      await assert.rejects(
        approve(consent.id, await assertionFor(key, { ...consent, ...change })),
        isProblem('consent/signature-invalid'),
      )
    }
    // Another consent's assertion does not approve this one.
    const other = await ask()
    await assert.rejects(approve(consent.id, await assertionFor(key, other)), isProblem('consent/signature-invalid'))
    assert.equal((await agent.getConsent(consent.id)).status, 'pending')
    await phone.client.approveConsentWithPasskey(consent.id, await assertionFor(key, consent))
  })

  test('without user verification, from another origin, with a bad signature, or an unknown or stranger passkey: refused alike', async () => {
    const consent = await ask()
    const refusals = [
      await assertionFor(key, consent, { userVerified: false }),
      await assertionFor(key, consent, { origin: 'https://evil.example' }),
      await assertionFor(key, consent, { rpId: 'evil.example' }),
      tamperSignature(await assertionFor(key, consent)),
      await assertionFor(newKey(), consent),
      await assertionFor(strangerKey, consent),
    ]
    const problems: unknown[] = []
    for (const assertion of refusals) {
      const refused = await approve(consent.id, assertion).then(
        () => assert.fail('approved'),
        (e: unknown) => e,
      )
      assert.ok(refused instanceof StrongroomError)
      problems.push(refused.problem)
    }
    for (const problem of problems) assert.deepEqual(problem, problems[0])
    assert.equal((problems[0] as { type: string }).type, `${PROBLEMS}consent/signature-invalid`)
    assert.equal((await agent.getConsent(consent.id)).status, 'pending')
    await server.flushAudit()
    const reasons = (
      await server.ctx.db
        .selectFrom('audit_events')
        .select('reason')
        .where('action', '=', 'consent.approve')
        .where('target_id', '=', consent.id)
        .orderBy('id')
        .execute()
    ).map((e) => e.reason)
    assert.deepEqual(reasons, [
      'user-not-verified',
      'wrong-origin',
      'wrong-rp-id',
      'signature-invalid',
      'unknown-credential',
      'unknown-credential',
    ])
  })

  test('an expired request cannot be approved by passkey', async () => {
    const consent = await ask()
    await server.ctx.db
      .updateTable('consents')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('id', '=', consent.id)
      .execute()
    await assert.rejects(approve(consent.id, await assertionFor(key, consent)), isProblem('consent/expired'))
  })

  test('two approvals at once, with two passkeys or the same assertion twice: exactly one wins', async () => {
    for (const pair of ['two passkeys', 'one assertion twice'] as const) {
      const consent = await ask()
      const first = await assertionFor(key, consent)
      const second = pair === 'two passkeys' ? await assertionFor(secondKey, consent) : first
      const results = await Promise.allSettled([approve(consent.id, first), approve(consent.id, second)])
      const won = results.filter((r) => r.status === 'fulfilled')
      assert.equal(won.length, 1, pair)
      const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult
      assert.ok(lost.reason instanceof StrongroomError && [400, 409].includes(lost.reason.status), pair)
      const receipts = await server.ctx.db
        .selectFrom('audit_events')
        .select('id')
        .where('action', '=', 'consent.approve')
        .where('target_id', '=', consent.id)
        .where('outcome', '=', 'success')
        .execute()
      assert.equal(receipts.length, 1, pair)
    }
  })

  test('a passkey meets a code step-up; a passkey rule is not met by device key and code; a deny still denies', async () => {
    await setPolicy([
      {
        name: 'large',
        action: 'consent.approve',
        minAmount: { value: 100000, currency: 'EUR' },
        outcome: { require: ['totp'] },
      },
      {
        name: 'huge',
        action: 'consent.approve',
        minAmount: { value: 1000000, currency: 'EUR' },
        outcome: { require: ['passkey'] },
      },
      {
        name: 'no dollars',
        action: 'consent.approve',
        minAmount: { value: 1, currency: 'USD' },
        outcome: { deny: true },
      },
    ])
    const large = await ask()
    await assert.rejects(phone.client.approveConsent(large), isProblem('auth/step-up-required'))
    const approved = await phone.client.approveConsentWithPasskey(large.id, await assertionFor(key, large))
    const claims = JSON.parse(Buffer.from((approved.receipt as string).split('.')[1] as string, 'base64url').toString())
    assert.deepEqual([claims.factors, claims.policy.rules], [['passkey'], ['large']])

    const huge = await ask({ value: 2000000, currency: 'EUR' })
    await assert.rejects(
      phone.client.approveConsent(huge, { totpCode: '123456' }),
      (e) => isProblem('auth/step-up-required')(e) && (e as StrongroomError).problem.detail === 'requires passkey',
    )
    assert.equal(
      (await phone.client.approveConsentWithPasskey(huge.id, await assertionFor(key, huge))).status,
      'approved',
    )

    const dollars = await ask({ value: 100, currency: 'USD' })
    await assert.rejects(
      phone.client.approveConsentWithPasskey(dollars.id, await assertionFor(key, dollars)),
      isProblem('auth/forbidden'),
    )
    await setPolicy([])
  })
})
