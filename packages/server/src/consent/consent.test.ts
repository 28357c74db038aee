import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import {
  type ConsentRequest,
  consentSigningPayload,
  enrolDevice,
  formatAmount,
  generateDeviceKeys,
  type MemberClient,
  StaffClient,
  StaffToken,
  StrongroomError,
  signConsent,
  verifyConsentReceipt,
} from '@strongroom/sdk'
import canonicalize from 'canonicalize'
import {
  base64url,
  calculateJwkThumbprint,
  createLocalJWKSet,
  decodeJwt,
  exportJWK,
  generateKeyPair,
  type JWK,
  jwtVerify,
} from 'jose'
import { signJwt } from '../platform/keyring/jws.ts'
import { openSigningKey, rotateSigningKey } from '../platform/keyring/signing-keys.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { isoCurrency } from './currencies.ts'
import { signReceipt } from './receipts.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'
const verifier = path.resolve(import.meta.dirname, '../../../../scripts/verify-receipt.js')

test('RFC 8785 canonical JSON: the example of its section 3.2.2', () => {
  const input = JSON.parse(
    '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],' +
      '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
  )
  assert.equal(
    canonicalize(input),
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
      '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
  )
})

describe('payment consent with dynamic linking', () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient
  let phone: Awaited<ReturnType<typeof enrolDevice>>
  let tablet: Awaited<ReturnType<typeof enrolDevice>>

  const payment = {
    amount: { value: 125000, currency: 'EUR' },
    payee: { name: 'ACME Ltd', account: 'DE89370400440532013000' },
    reference: 'Invoice 2026-114',
  }

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    phone = await enrolDevice({ baseUrl: server.url, enrolmentCode: await bank.enrolmentCode(), label: 'phone' })
    tablet = await enrolDevice({ baseUrl: server.url, enrolmentCode: await bank.enrolmentCode(), label: 'tablet' })
  })
  after(() => server.stop())

  const request = () => agent.requestConsent({ customerId: bank.customerId, ...payment })
  const jwks = async () => (await fetch(`${server.url}/.well-known/jwks.json`)).json()

  test('the customer sees exactly what is asked, approves it, and the bank gets a receipt it verifies offline', async () => {
    const asked = await request()
    assert.equal(asked.status, 'pending')
    const seen = await phone.client.getConsent(asked.id)
    assert.equal(formatAmount(seen.amount), 'EUR 1,250.00')
    assert.deepEqual([seen.payee, seen.reference], [payment.payee, payment.reference])

    const approved = await phone.client.approveConsent(seen)
    assert.equal(approved.status, 'approved')
    const receipt = approved.receipt as string
    const { payload, protectedHeader } = await jwtVerify(receipt, createLocalJWKSet(await jwks()), {
      issuer: 'strongroom',
      typ: 'strongroom-receipt+jwt',
    })
    assert.equal(protectedHeader.alg, 'ES256')
    assert.equal(payload.sub, asked.id)
    assert.deepEqual(payload.transaction, payment)
    assert.equal(payload.deviceId, phone.device.id)
    assert.equal(payload.factor, 'device-key')
    assert.equal((await agent.getConsent(asked.id)).receipt, receipt)

    // The offline verifier a bank runs, with nothing but the receipt and the JWKS.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sr-receipt-'))
    writeFileSync(path.join(dir, 'receipt.jws'), receipt)
    writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify(await jwks()))
    const ok = spawnSync(process.execPath, [verifier, path.join(dir, 'receipt.jws'), path.join(dir, 'jwks.json')], {
      encoding: 'utf8',
    })
    assert.equal(ok.status, 0, ok.stderr)
    assert.equal(JSON.parse(ok.stdout).transaction.amount.value, 125000)
    // A cent changed in the receipt breaks it.
    const [header, body, signature] = receipt.split('.')
    const claims = decodeJwt(receipt) as { transaction: { amount: { value: number } } }
    claims.transaction.amount.value = 125001
    const forged = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`
    assert.notEqual(forged.split('.')[1], body)
    writeFileSync(path.join(dir, 'receipt.jws'), forged)
    const bad = spawnSync(process.execPath, [verifier, path.join(dir, 'receipt.jws'), path.join(dir, 'jwks.json')], {
      encoding: 'utf8',
    })
    assert.equal(bad.status, 1)
    assert.match(bad.stderr, /ERR_JWS_SIGNATURE_VERIFICATION_FAILED/)
  })

  // Issue 14: the device's signature was verified and discarded; the receipt was only the bank's word.
  test('the receipt carries the device’s own signature: the verifier checks both, and fails when either is altered', async () => {
    const asked = await request()
    const receipt = (await phone.client.approveConsent(await phone.client.getConsent(asked.id))).receipt as string
    const claims = decodeJwt(receipt) as Record<string, unknown> & {
      deviceKey: JWK
      deviceSignature: string
      keyThumbprint: string
      transaction: typeof payment
    }
    assert.equal(claims.keyThumbprint, await calculateJwkThumbprint(claims.deviceKey))
    // How the device came to be the customer's, pointing at the enrolment in the audit chain.
    const enrolment = await server.ctx.db
      .selectFrom('audit_events')
      .select(['id', 'occurred_at'])
      .where('action', '=', 'device.enrol')
      .where('target_id', '=', phone.device.id)
      .executeTakeFirstOrThrow()
    assert.deepEqual(claims.deviceEnrolment, {
      enrolledAt: phone.device.createdAt,
      via: 'enrolment-code',
      auditEventId: Number(enrolment.id),
    })
    assert.equal(
      new TextDecoder().decode(base64url.decode(claims.deviceSignature.split('.')[1] as string)),
      consentSigningPayload(asked),
    )
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sr-receipt-'))
    writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify(await jwks()))
    const verify = (jws: string) => {
      writeFileSync(path.join(dir, 'receipt.jws'), jws)
      return spawnSync(process.execPath, [verifier, path.join(dir, 'receipt.jws'), path.join(dir, 'jwks.json')], {
        encoding: 'utf8',
      })
    }
    assert.equal(verify(receipt).status, 0)
    // Whoever holds the bank's receipt key (the bank itself) re-signs a receipt: the customer's signature still decides.
    const provider = server.keyProvider
    const bankKey = await openSigningKey(server.ctx.db, provider, 'consent-receipt', bank.tenantId)
    const resigned = async (changes: Record<string, unknown>) =>
      signJwt(bankKey, 'strongroom-receipt+jwt', { ...claims, ...changes })
    const [header, , signature] = claims.deviceSignature.split('.') as [string, string, string]
    const otherPayload = Buffer.from(
      consentSigningPayload({ ...asked, amount: { value: 999999, currency: 'EUR' } }),
    ).toString('base64url')
    const cases: [string, Record<string, unknown>, RegExp][] = [
      [
        'the device signature altered',
        { deviceSignature: `${header}.${otherPayload}.${signature}` },
        /does not verify/,
      ],
      [
        'the amount the bank claims altered',
        { transaction: { ...payment, amount: { value: 999999, currency: 'EUR' } } },
        /another transaction/,
      ],
      [
        'another device key named',
        { deviceKey: await exportJWK((await generateKeyPair('ES256')).publicKey) },
        /thumbprint/,
      ],
      ['the device signature dropped', { deviceSignature: undefined }, /no device signature/],
    ]
    for (const [name, changes, why] of cases) {
      const result = verify(await resigned(changes))
      assert.equal(result.status, 1, name)
      assert.match(result.stderr, /ERR_DEVICE_SIGNATURE/, name)
      assert.match(result.stderr, why, name)
    }
  })

  test('the SDK verifies a receipt against the JWKS and the consent it is for; forged, foreign or other receipts fail', async () => {
    const asked = await request()
    const approved = await phone.client.approveConsent(await phone.client.getConsent(asked.id))
    const receipt = approved.receipt as string
    const keys = await agent.receiptKeys()
    const verified = await verifyConsentReceipt(receipt, keys, asked)
    assert.deepEqual(
      [verified.consentId, verified.tenantId, verified.customerId, verified.deviceId, verified.factor],
      [asked.id, bank.tenantId, bank.customerId, phone.device.id, 'device-key'],
    )
    assert.deepEqual(verified.transaction, payment)
    assert.equal(verified.keyId, keys.keys[0]?.kid)

    const [header, , signature] = receipt.split('.')
    const claims = decodeJwt(receipt) as { transaction: { payee: { account: string } } }
    claims.transaction.payee.account = 'GB33BUKB20201555555555'
    const forged = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`
    await assert.rejects(verifyConsentReceipt(forged, keys), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' })
    const stranger = await exportJWK((await generateKeyPair('ES256')).publicKey)
    await assert.rejects(verifyConsentReceipt(receipt, { keys: [{ ...stranger, kid: keys.keys[0]?.kid }] }), {
      code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    })
    const other = await request()
    await assert.rejects(verifyConsentReceipt(receipt, keys, other), /not for this consent/)
    await assert.rejects(
      verifyConsentReceipt(receipt, keys, { ...asked, amount: { value: 125001, currency: 'EUR' } }),
      /not for this consent/,
    )
  })

  test("a bank's JWKS (`?tenant=`) lists its receipt keys only, through the SDK too; a bad query is a problem+json 400", async () => {
    const asked = await request()
    const receipt = (await phone.client.approveConsent(await phone.client.getConsent(asked.id))).receipt as string
    const other = await createTestBank(server, 'JWKS Other Bank')
    const ours = await agent.receiptKeys(bank.tenantId)
    assert.equal((await verifyConsentReceipt(receipt, ours, asked)).tenantId, bank.tenantId)
    const theirs = await agent.receiptKeys(other.tenantId)
    assert.ok(!theirs.keys.some((key) => ours.keys.some((mine) => mine.kid === key.kid)))
    await assert.rejects(verifyConsentReceipt(receipt, theirs, asked))

    for (const query of [
      'tenant=ten_short',
      'tenant=..%2Ften_aaaaaaaaaaaaaaaaaaaaaa',
      `tenant=${bank.tenantId}&tenant=${other.tenantId}`,
      `tenant=${bank.tenantId}&kid=k1`,
    ]) {
      const response = await fetch(`${server.url}/.well-known/jwks.json?${query}`)
      assert.equal(response.status, 400, query)
      assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/)
      assert.equal(((await response.json()) as { type: string }).type, `${PROBLEMS}request/invalid`)
    }
  })

  test("staff list a conversation's requests, newest first, decisions and receipts included; only their bank's", async () => {
    const conversation = await agent.createConversation({ customerId: bank.customerId })
    const first = await agent.requestConsent({
      customerId: bank.customerId,
      conversationId: conversation.id,
      ...payment,
    })
    await request() // outside the conversation: not listed
    const second = await agent.requestConsent({
      customerId: bank.customerId,
      conversationId: conversation.id,
      ...payment,
      reference: 'Invoice 2026-115',
    })
    await phone.client.approveConsent(await phone.client.getConsent(first.id))
    const listed = await agent.listConsents(conversation.id)
    assert.deepEqual(
      listed.map((c) => [c.id, c.status, c.reference, c.receipt !== undefined]),
      [
        [second.id, 'pending', 'Invoice 2026-115', false],
        [first.id, 'approved', payment.reference, true],
      ],
    )
    assert.deepEqual(
      (await agent.listConsents(conversation.id, 1)).map((c) => c.id),
      [second.id],
    )
    const other = await createTestBank(server, 'Listing Bank')
    const stranger = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(other.agentToken) })
    await assert.rejects(stranger.listConsents(conversation.id), (e: StrongroomError) => e.status === 404)
    // The customer's own device sees only what still waits for its answer.
    assert.deepEqual(
      (await phone.client.listPendingConsents({ conversationId: conversation.id })).map((c) => c.id),
      [second.id],
    )
    await assert.rejects(agent.listConsents('not-a-conversation'), (e: StrongroomError) => e.status === 400)
  })

  test('an agent not in a conversation neither reads its payment requests nor asks one in it; a supervisor does', async () => {
    const conversation = await agent.createConversation({ customerId: bank.customerId })
    const asked = await agent.requestConsent({
      customerId: bank.customerId,
      conversationId: conversation.id,
      ...payment,
    })
    const colleague = new StaffClient({
      baseUrl: server.url,
      credentials: new StaffToken((await bank.staffToken('agent')).token),
    })
    // Another agent of the bank, not in the conversation: as if it did not exist, as for its messages.
    await assert.rejects(colleague.listConsents(conversation.id), (e: StrongroomError) => e.status === 404)
    await assert.rejects(
      colleague.requestConsent({ customerId: bank.customerId, conversationId: conversation.id, ...payment }),
      (e: StrongroomError) => e.status === 404,
    )
    const supervisor = new StaffClient({
      baseUrl: server.url,
      credentials: new StaffToken((await bank.staffToken('supervisor')).token),
    })
    assert.deepEqual(
      (await supervisor.listConsents(conversation.id)).map((c) => c.id),
      [asked.id],
    )
    // Nothing was added by the refused request.
    assert.deepEqual(
      (await agent.listConsents(conversation.id)).map((c) => c.id),
      [asked.id],
    )
  })

  test('a signature over a changed amount, currency, payee, reference or challenge is refused and decides nothing', async () => {
    const asked = await request()
    const seen = await phone.client.getConsent(asked.id)
    const tampered: ConsentRequest[] = [
      { ...seen, amount: { ...seen.amount, value: seen.amount.value + 1 } },
      { ...seen, amount: { ...seen.amount, currency: 'USD' } },
      { ...seen, payee: { ...seen.payee, account: 'GB33BUKB20201555555555' } },
      { ...seen, payee: { ...seen.payee, name: 'ACME Ltd.' } },
      { ...seen, reference: 'Invoice 2026-115' },
      { ...seen, challenge: 'A'.repeat(43) },
    ]
    const keys = (phone.client.credentials as unknown as { keys: Parameters<typeof signConsent>[0] }).keys
    for (const changed of tampered) {
      const response = await rawApprove(phone.client, asked.id, await signConsent(keys, changed))
      assert.equal(response.type, `${PROBLEMS}consent/signature-invalid`)
      assert.equal(response.detail, 'the signed transaction is not the one requested')
    }
    assert.equal((await agent.getConsent(asked.id)).status, 'pending')
  })

  test('a signature by another key is refused', async () => {
    const asked = await request()
    const seen = await phone.client.getConsent(asked.id)
    const response = await rawApprove(phone.client, asked.id, await signConsent(await generateDeviceKeys(), seen))
    assert.equal(response.type, `${PROBLEMS}consent/signature-invalid`)
    assert.equal(response.detail, 'the signature does not verify with this device key')
  })

  test('an approval cannot be replayed, and a declined request cannot be approved', async () => {
    const asked = await request()
    const seen = await phone.client.getConsent(asked.id)
    const keys = (phone.client.credentials as unknown as { keys: Parameters<typeof signConsent>[0] }).keys
    const signature = await signConsent(keys, seen)
    assert.equal((await rawApprove(phone.client, asked.id, signature)).status, 'approved')
    assert.equal((await rawApprove(phone.client, asked.id, signature)).type, `${PROBLEMS}consent/already-decided`)

    const other = await request()
    const declined = await phone.client.declineConsent(other.id, 'not me')
    assert.equal(declined.status, 'declined')
    assert.equal(declined.receipt, undefined)
    await assert.rejects(
      phone.client.approveConsent(await phone.client.getConsent(other.id)),
      (e) => e instanceof StrongroomError && e.type === `${PROBLEMS}consent/already-decided`,
    )
  })

  test('two devices approving one request at once: exactly one wins', async () => {
    const asked = await request()
    const [a, b] = await Promise.all([phone.client.getConsent(asked.id), tablet.client.getConsent(asked.id)])
    const results = await Promise.allSettled([
      phone.client.approveConsent(a as ConsentRequest),
      tablet.client.approveConsent(b as ConsentRequest),
      phone.client.approveConsent(a as ConsentRequest),
    ])
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
    for (const r of results.filter((r) => r.status === 'rejected')) {
      assert.equal(((r as PromiseRejectedResult).reason as StrongroomError).type, `${PROBLEMS}consent/already-decided`)
    }
  })

  test('an expired request shows as expired and cannot be approved', async () => {
    const asked = await request()
    const seen = await phone.client.getConsent(asked.id)
    await server.ctx.db
      .updateTable('consents')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('id', '=', asked.id)
      .execute()
    assert.equal((await agent.getConsent(asked.id)).status, 'expired')
    await assert.rejects(
      phone.client.approveConsent(seen),
      (e) => e instanceof StrongroomError && e.status === 410 && e.type === `${PROBLEMS}consent/expired`,
    )
  })

  test("another customer's device, another tenant, and staff cannot approve; bad requests are refused", async () => {
    const asked = await request()
    const other = await createTestBank(server, 'Other Bank')
    const stranger = await enrolDevice({ baseUrl: server.url, enrolmentCode: await other.enrolmentCode(), label: 's' })
    await assert.rejects(stranger.client.getConsent(asked.id), (e) => e instanceof StrongroomError && e.status === 404)
    const staffApprove = await fetch(`${server.url}/v1/consents/${asked.id}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bank.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ signature: 'x' }),
    })
    assert.equal(staffApprove.status, 403)
    for (const bad of [
      { ...payment, amount: { value: 0, currency: 'EUR' } },
      { ...payment, amount: { value: 12.5, currency: 'EUR' } },
      { ...payment, amount: { value: 100, currency: 'eur' } },
      { ...payment, amount: { value: '100', currency: 'EUR' } },
    ]) {
      await assert.rejects(
        agent.requestConsent({ customerId: bank.customerId, ...(bad as typeof payment) }),
        (e) => e instanceof StrongroomError && e.status === 400,
      )
    }
    // Issue 14: ZZZ was accepted. Currencies come from the ISO 4217 list, with their minor units.
    for (const code of ['ZZZ', 'XXX', 'XTS', 'XAU']) {
      await assert.rejects(
        agent.requestConsent({ customerId: bank.customerId, ...payment, amount: { value: 100, currency: code } }),
        (e) => e instanceof StrongroomError && e.type === `${PROBLEMS}consent/unknown-currency`,
        code,
      )
    }
    for (const code of ['JPY', 'BHD', 'XOF']) {
      const asked = await agent.requestConsent({
        customerId: bank.customerId,
        ...payment,
        amount: { value: 100, currency: code },
      })
      assert.equal(asked.amount.currency, code)
    }
    assert.deepEqual(
      ['JPY', 'EUR', 'BHD', 'ZZZ'].map((code) => isoCurrency(code)?.minorUnits),
      [0, 2, 3, undefined],
    )
  })

  test('the payee and the receipt are encrypted at rest; requests and approvals are audited', async () => {
    const asked = await request()
    await phone.client.approveConsent(await phone.client.getConsent(asked.id))
    const row = await server.ctx.db
      .selectFrom('consents')
      .selectAll()
      .where('id', '=', asked.id)
      .executeTakeFirstOrThrow()
    for (const column of [row.details, row.receipt as Uint8Array]) {
      const bytes = Buffer.from(column)
      assert.ok(!bytes.includes('DE89370400440532013000') && !bytes.includes('ACME'))
    }
    await server.flushAudit()
    const actions = await server.ctx.db
      .selectFrom('audit_events')
      .select(['action', 'actor_id'])
      .where('target_id', '=', asked.id)
      .orderBy('id')
      .execute()
    assert.deepEqual(actions, [
      { action: 'consent.request', actor_id: bank.agentId },
      { action: 'consent.approve', actor_id: phone.device.id },
    ])
  })

  test('after the receipt key is rotated, new receipts use the new key and old ones still verify', async () => {
    const before = (await phone.client.approveConsent(await phone.client.getConsent((await request()).id))).receipt
    const provider = server.keyProvider
    const newKeyId = await rotateSigningKey(server.ctx.db, provider, 'consent-receipt', bank.tenantId)
    assert.equal(newKeyId, `consent-receipt-${bank.tenantId}-2`)
    const jwks = createLocalJWKSet(await (await fetch(`${server.url}/.well-known/jwks.json`)).json())
    const old = await jwtVerify(before as string, jwks)
    assert.notEqual(old.protectedHeader.kid, newKeyId)
    // The bank's own JWKS verifies its receipts; another bank's does not hold its keys.
    const ownKids = async (tenant: string) =>
      ((await (await fetch(`${server.url}/.well-known/jwks.json?tenant=${tenant}`)).json()).keys as { kid: string }[])
        .map((k) => k.kid)
        .sort()
    assert.deepEqual(await ownKids(bank.tenantId), [`consent-receipt-${bank.tenantId}-1`, newKeyId])
    await jwtVerify(
      before as string,
      createLocalJWKSet(await (await fetch(`${server.url}/.well-known/jwks.json?tenant=${bank.tenantId}`)).json()),
    )
    const other = await createTestBank(server, 'Other Receipt Bank')
    assert.ok(!(await ownKids(other.tenantId)).some((kid) => kid.includes(bank.tenantId)))
    const bad = await fetch(`${server.url}/.well-known/jwks.json?tenant=..%2Fx`)
    assert.equal(bad.status, 400)
    assert.equal(bad.headers.get('content-type'), 'application/problem+json; charset=utf-8')
    const key = await openSigningKey(server.ctx.db, provider, 'consent-receipt', bank.tenantId)
    assert.equal(key.id, newKeyId)
    const fresh = await signReceipt(key, {
      tenantId: bank.tenantId,
      consentId: 'con_x',
      customerId: bank.customerId,
      transaction: payment,
      challenge: 'c',
      factor: 'device-key',
      deviceId: phone.device.id,
      deviceEnrolment: null,
      keyThumbprint: 't',
      deviceKey: {},
      deviceSignature: 's',
      approvedAt: new Date(),
      factors: ['device-key'],
      policy: { decision: 'allowed', assurance: 'possession', reason: 'test', rules: [] },
    })
    assert.equal((await jwtVerify(fresh, jwks)).protectedHeader.kid, newKeyId)
  })

  async function rawApprove(client: MemberClient, consentId: string, signature: string) {
    try {
      return await client.request<ConsentRequest & { type?: string; detail?: string }>(
        'POST',
        `/v1/consents/${consentId}/approve`,
        { signature },
      )
    } catch (error) {
      if (error instanceof StrongroomError)
        return { ...error.problem } as unknown as ConsentRequest & {
          type: string
          detail?: string
        }
      throw error
    }
  }
})
