/**
 * The pivot's step-up (issue #4, item 5): a browser that is not an enrolled device of the link's customer proves with
 * the link and a fresh factor (passkey, or an SMS code after the SIM-swap check) that the customer holds it; its key
 * becomes the customer's new device and redeems the link in one transaction. Every failure changes nothing.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  createDpopProof,
  enrolDevice,
  enrolWithPivotLink,
  generateDeviceKeys,
  openPivotLink,
  type PivotFactor,
  pivotStepUpOptions,
  pivotTokenOf,
  StaffClient,
  StaffToken,
  StrongroomError,
  sendPivotSmsCode,
} from '@strongroom/sdk'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { PROBLEMS, problemOf } from '../testing/problems.ts'
import { configureSimulatedSms, SimulatedPhone } from '../testing/simulated-phone.ts'
import { SoftwareAuthenticator, tamperSignature } from '../testing/software-authenticator.ts'

const BANK_NUMBER = '+442071838750'

describe('stepping up with a pivot link: a new device of the link’s customer, by passkey or SMS code', () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient
  let origin: string
  let rpId: string
  let phoneSeq = 200
  const secretsSeen: string[] = []

  const phoneOf = (address: string) => new SimulatedPhone(server.url, address)
  async function lastCode(address: string): Promise<string> {
    const code = await phoneOf(address).lastCode()
    assert.ok(code, 'an SMS with a 6-digit code was sent')
    secretsSeen.push(code)
    return code
  }
  async function count(table: 'devices' | 'messages' | 'conversations' | 'conversation_members') {
    const row = await server.ctx.db
      .selectFrom(table)
      .select(({ fn }) => fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow()
    return Number(row.n)
  }
  const rowCounts = async () => ({
    devices: await count('devices'),
    messages: await count('messages'),
    conversations: await count('conversations'),
    members: await count('conversation_members'),
  })
  const linkRow = (token: string) =>
    server.ctx.db
      .selectFrom('pivot_links')
      .selectAll()
      .where('id', '=', pivotLinkIds.get(token) as string)
      .executeTakeFirstOrThrow()
  const pivotLinkIds = new Map<string, string>()

  /**
   * A customer who texts the bank (with a number on file unless `phone` is false), with an enrolled phone that
   * registered a software passkey (unless `passkey` is false), and a pivot link the agent sent them.
   */
  async function customerWithLink(options: { phone?: boolean; passkey?: boolean; counting?: boolean } = {}) {
    const phoneNumber = `+4477009${String(phoneSeq++).padStart(5, '0')}`
    const customer = await agent.request<{ id: string }>('POST', '/v1/customers', {
      externalRef: `STEP-${phoneSeq}`,
      displayName: 'Step Customer',
      ...(options.phone === false ? {} : { phoneNumber }),
    })
    const { code } = await agent.issueEnrolmentCode(customer.id)
    const phone = await enrolDevice({ baseUrl: server.url, enrolmentCode: code, label: 'phone' })
    let key: SoftwareAuthenticator | undefined
    if (options.passkey !== false) {
      key = new SoftwareAuthenticator({ origin, rpId, counting: options.counting ?? true })
      await phone.client.registerPasskey(key.register(await phone.client.passkeyRegistrationOptions()))
    }
    await phoneOf(phoneNumber).texts(BANK_NUMBER, 'Please call me about my loan')
    const [conversation] = await agent.listConversations()
    assert.ok(conversation)
    if (options.phone === false) {
      await agent.request('POST', `/v1/conversations/${conversation.id}/public-channel/customer`, {
        customerId: customer.id,
      })
    }
    const invited = await agent.request<{ link: { id: string } }>(
      'POST',
      `/v1/conversations/${conversation.id}/pivot`,
      { replace: true },
    )
    const token = pivotTokenOf((await phoneOf(phoneNumber).lastLink()) ?? '')
    assert.ok(token)
    pivotLinkIds.set(token, invited.link.id)
    secretsSeen.push(token)
    return { customerId: customer.id, phoneNumber, phone, key, token, conversationId: conversation.id }
  }

  const link = (token: string) => ({ baseUrl: server.url, token })
  const passkeyFactor = async (token: string, key: SoftwareAuthenticator): Promise<PivotFactor> => {
    const options = await pivotStepUpOptions(link(token))
    assert.ok(options.passkey)
    return { kind: 'passkey', assertion: key.assert(options.passkey) }
  }
  const enrol = (token: string, factor: PivotFactor, label = 'Browser') =>
    enrolWithPivotLink({ ...link(token), label, factor })

  before(async () => {
    server = await startTestServer({ publicUrl: 'https://bank.example' })
    origin = (server.config.rpOrigins as string).split(',')[0] as string
    rpId = server.config.rpId as string
    bank = await createTestBank(server, 'Step-up Bank')
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    await configureSimulatedSms(admin, { bankNumber: BANK_NUMBER, agentId: bank.agentId })
  })
  after(() => server.stop())

  test('the options name the factors the customer has, with a fresh passkey challenge, and nothing personal', async () => {
    const { token, key } = await customerWithLink()
    const options = await pivotStepUpOptions(link(token))
    assert.equal(options.sms, true)
    assert.ok(options.passkey)
    assert.equal(options.passkey.userVerification, 'required')
    assert.deepEqual(
      options.passkey.allowCredentials?.map((c) => c.id),
      [key?.id],
    )
    assert.deepEqual(Object.keys(options).sort(), ['expiresAt', 'passkey', 'sms'])
    assert.doesNotMatch(JSON.stringify(options), /Step Customer|\+4477009/)
    const again = await pivotStepUpOptions(link(token))
    assert.notEqual(again.passkey?.challenge, options.passkey.challenge, 'each call issues its own challenge')

    const bare = await customerWithLink({ phone: false, passkey: false })
    assert.deepEqual(
      { ...(await pivotStepUpOptions(link(bare.token))), expiresAt: undefined },
      { expiresAt: undefined, passkey: null, sms: false },
    )
  })

  test('with a passkey: the browser key becomes a device of the customer and the conversation moves', async () => {
    const { token, key, customerId, phone, phoneNumber } = await customerWithLink()
    assert.ok(key)
    assert.ok(await openPivotLink(link(token)))
    const keys = await generateDeviceKeys()
    const enrolled = await enrolWithPivotLink({
      ...link(token),
      label: 'Browser',
      keys,
      factor: await passkeyFactor(token, key),
    })
    assert.equal(enrolled.device.customerId, customerId)
    assert.equal(enrolled.device.status, 'active')
    assert.equal(enrolled.importedMessages, 1, 'the customer’s text (the invitation stays behind)')
    assert.ok(enrolled.wipeKeys?.keys.length, 'the wipe keys to pin came with the enrolment')

    const secure = await enrolled.client.getConversation(enrolled.secureConversationId)
    assert.equal(secure.customerId, customerId)
    assert.deepEqual(
      secure.members.map((m) => `${m.kind}:${m.id}`).sort(),
      [`device:${enrolled.device.id}`, `device:${phone.device.id}`, `staff:${bank.agentId}`].sort(),
    )
    const history = await enrolled.client.listPublicMessages(enrolled.secureConversationId)
    assert.deepEqual(
      history.map((m) => [m.direction, m.imported, m.channel]),
      [['inbound', true, 'twilio']],
    )
    const row = await linkRow(token)
    assert.deepEqual([row.completed_via, row.device_id], ['passkey', enrolled.device.id])
    assert.match((await phoneOf(phoneNumber).inbox()).at(-1)?.text ?? '', /continues on our secure page/)
    // The customer's devices now include the browser, and the device's key is what authenticates it.
    assert.ok((await phone.client.listMyDevices()).some((d) => d.id === enrolled.device.id))

    await server.flushAudit()
    const events = await server.ctx.db
      .selectFrom('audit_events')
      .select(['action', 'outcome', 'actor_kind', 'actor_id', 'details'])
      .where('tenant_id', '=', bank.tenantId)
      .where('actor_id', '=', enrolled.device.id)
      .execute()
    const byAction = new Map(events.map((e) => [e.action, e]))
    assert.equal(JSON.parse(byAction.get('device.enrol')?.details ?? '{}').via, 'pivot-passkey')
    assert.equal(JSON.parse(byAction.get('channels.pivot.redeem')?.details ?? '{}').via, 'passkey')
  })

  test('with an SMS code to the number on file: enrolled and redeemed', async () => {
    const { token, phoneNumber, customerId } = await customerWithLink({ passkey: false })
    assert.equal((await pivotStepUpOptions(link(token))).passkey, null)
    const sent = await sendPivotSmsCode(link(token))
    assert.ok(Date.parse(sent.expiresAt) > Date.now())
    const code = await lastCode(phoneNumber)
    const enrolled = await enrol(token, { kind: 'sms-otp', code })
    assert.equal(enrolled.device.customerId, customerId)
    assert.equal(enrolled.device.kind, 'web', 'the browser that stepped up is a device of the browser kind')
    assert.equal((await linkRow(token)).completed_via, 'sms-otp')
    // The code worked once: it cannot enrol anything else.
    const other = await customerWithLink({ passkey: false })
    assert.equal((await problemOf(enrol(other.token, { kind: 'sms-otp', code }))).type, `${PROBLEMS}auth/invalid-code`)
  })

  test('a wrong SMS code changes nothing but counts: after five, even the right code is refused', async () => {
    const { token, phoneNumber } = await customerWithLink({ passkey: false })
    await sendPivotSmsCode(link(token))
    const code = await lastCode(phoneNumber)
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0')
    const before = await rowCounts()
    for (let attempt = 0; attempt < 5; attempt++) {
      const refused = await problemOf(enrol(token, { kind: 'sms-otp', code: wrong }))
      assert.deepEqual([refused.status, refused.type], [400, `${PROBLEMS}auth/invalid-code`])
    }
    assert.equal((await problemOf(enrol(token, { kind: 'sms-otp', code }))).type, `${PROBLEMS}auth/invalid-code`)
    assert.deepEqual(await rowCounts(), before)
    assert.equal((await linkRow(token)).completed_at, null, 'the link is still usable (with another factor)')
  })

  test('a forged, replayed, foreign or wrong-purpose passkey assertion changes nothing', async () => {
    const { token, key, phone } = await customerWithLink()
    const stranger = await customerWithLink()
    assert.ok(key && stranger.key)
    const before = await rowCounts()
    const invalid = async (factor: PivotFactor) => {
      const refused = await problemOf(enrol(token, factor))
      assert.deepEqual([refused.status, refused.type], [401, `${PROBLEMS}auth/passkey-invalid`])
    }
    const options = await pivotStepUpOptions(link(token))
    assert.ok(options.passkey)
    const genuine = key.assert(options.passkey)
    await invalid({ kind: 'passkey', assertion: tamperSignature(genuine) })
    // The forged attempt used the challenge up: the genuine assertion for it is refused too.
    await invalid({ kind: 'passkey', assertion: genuine })
    // Another customer's passkey, over a challenge issued for this link.
    await invalid({
      kind: 'passkey',
      assertion: stranger.key.assert((await pivotStepUpOptions(link(token))).passkey as never),
    })
    // A challenge issued to the customer's enrolled phone for another purpose is not a pivot challenge.
    await invalid({ kind: 'passkey', assertion: key.assert(await phone.client.passkeyAuthenticationOptions()) })
    assert.deepEqual(await rowCounts(), before)
    assert.equal((await linkRow(token)).completed_at, null)
    // And the link still works with a good factor.
    await enrol(token, await passkeyFactor(token, key))
  })

  test('expired, used and unknown links are refused at every step, before any factor is spent', async () => {
    const { token, phoneNumber, key } = await customerWithLink()
    assert.ok(key)
    await sendPivotSmsCode(link(token))
    const code = await lastCode(phoneNumber)
    await server.ctx.db
      .updateTable('pivot_links')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('id', '=', pivotLinkIds.get(token) as string)
      .execute()
    const before = await rowCounts()
    for (const step of [
      () => pivotStepUpOptions(link(token)),
      () => sendPivotSmsCode(link(token)),
      () => enrol(token, { kind: 'sms-otp', code }),
    ]) {
      const refused = await problemOf(step())
      assert.deepEqual([refused.status, refused.type], [410, `${PROBLEMS}pivot/token-expired`])
    }
    assert.deepEqual(await rowCounts(), before)
    const unused = await server.ctx.db
      .selectFrom('sms_otp_codes')
      .select(['used_at', 'failed_attempts'])
      .orderBy('created_at', 'desc')
      .executeTakeFirstOrThrow()
    assert.deepEqual([unused.used_at, unused.failed_attempts], [null, 0], 'the code was not spent')

    const used = await customerWithLink()
    assert.ok(used.key)
    await enrol(used.token, await passkeyFactor(used.token, used.key))
    const afterUse = await rowCounts()
    for (const step of [
      () => pivotStepUpOptions(link(used.token)),
      () => sendPivotSmsCode(link(used.token)),
      () => enrol(used.token, { kind: 'sms-otp', code: '123456' }),
    ]) {
      const refused = await problemOf(step())
      assert.deepEqual([refused.status, refused.type], [409, `${PROBLEMS}pivot/token-used`])
    }
    assert.deepEqual(await rowCounts(), afterUse)

    const unknown = await problemOf(enrol('srp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', { kind: 'sms-otp', code }))
    assert.deepEqual([unknown.status, unknown.type], [400, `${PROBLEMS}pivot/invalid-token`])
    assert.deepEqual(await rowCounts(), afterUse)
  })

  test('the SIM-swap gate fails closed: no code is sent to a number whose SIM just changed', async () => {
    const { token, phoneNumber } = await customerWithLink({ passkey: false })
    const swapped = await fetch(`${server.url}/dev/camara/sim-swaps/${encodeURIComponent(phoneNumber)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ swappedAt: new Date(Date.now() - 3_600_000).toISOString() }),
    })
    assert.equal(swapped.status, 204)
    const messagesBefore = (await phoneOf(phoneNumber).inbox()).length
    const refused = await problemOf(sendPivotSmsCode(link(token)))
    assert.deepEqual([refused.status, refused.type], [403, `${PROBLEMS}risk/sim-swapped`])
    assert.equal((await phoneOf(phoneNumber).inbox()).length, messagesBefore)
  })

  test('a key that is already a device, or no DPoP proof, is refused and leaves the link usable', async () => {
    const { token, key, phone } = await customerWithLink()
    assert.ok(key)
    const before = await rowCounts()
    const reused = await problemOf(
      enrolWithPivotLink({ ...link(token), label: 'again', keys: phone.keys, factor: await passkeyFactor(token, key) }),
    )
    assert.deepEqual([reused.status, reused.type], [409, `${PROBLEMS}identity/device-key-in-use`])
    const response = await fetch(`${server.url}/v1/pivot/enrol`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token, label: 'x', factor: { kind: 'sms-otp', code: '000000' } }),
    })
    assert.equal(response.status, 401)
    assert.equal(((await response.json()) as { type: string }).type, `${PROBLEMS}auth/invalid-dpop-proof`)
    // A proof for another URL is not a proof for this one.
    const keys = await generateDeviceKeys()
    const elsewhere = await fetch(`${server.url}/v1/pivot/enrol`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        dpop: await createDpopProof(keys, { htm: 'POST', htu: `${server.url}/v1/devices` }),
      },
      body: JSON.stringify({ token, label: 'x', factor: { kind: 'sms-otp', code: '000000' } }),
    })
    assert.equal(elsewhere.status, 401)
    assert.deepEqual(await rowCounts(), before)
    assert.equal((await linkRow(token)).completed_at, null)
  })

  test('many attempts at once with valid factors: exactly one device is enrolled and the link used once', async () => {
    const { token, key } = await customerWithLink({ counting: false })
    assert.ok(key)
    const factors = await Promise.all(Array.from({ length: 6 }, () => passkeyFactor(token, key)))
    const devicesBefore = await count('devices')
    const results = await Promise.allSettled(factors.map((factor, i) => enrol(token, factor, `browser ${i}`)))
    const succeeded = results.filter((r) => r.status === 'fulfilled')
    assert.equal(succeeded.length, 1)
    for (const result of results) {
      if (result.status === 'fulfilled') continue
      assert.ok(result.reason instanceof StrongroomError)
      assert.equal(result.reason.type, `${PROBLEMS}pivot/token-used`)
    }
    assert.equal(await count('devices'), devicesBefore + 1)
  })

  test('a device lists its customer’s pending consents; other customers’ devices see none, staff must name a conversation', async () => {
    const { token, key, customerId } = await customerWithLink()
    assert.ok(key)
    const browser = await enrol(token, await passkeyFactor(token, key))
    const payment = {
      amount: { value: 125000, currency: 'EUR' },
      payee: { name: 'ACME Ltd', account: 'DE89370400440532013000' },
      reference: 'Invoice 2026-114',
    }
    const inChat = await agent.requestConsent({
      ...payment,
      customerId,
      conversationId: browser.secureConversationId,
    })
    const elsewhere = await agent.requestConsent({ ...payment, customerId, reference: 'Other' })
    const decided = await agent.requestConsent({ ...payment, customerId, reference: 'Decided' })
    await browser.client.declineConsent(decided.id)
    assert.deepEqual(
      (await browser.client.listPendingConsents()).map((c) => c.id),
      [inChat.id, elsewhere.id],
    )
    assert.deepEqual(
      (await browser.client.listPendingConsents({ conversationId: browser.secureConversationId })).map((c) => c.id),
      [inChat.id],
    )
    const [shown] = await browser.client.listPendingConsents({ conversationId: browser.secureConversationId })
    assert.deepEqual(
      [shown?.amount, shown?.payee, shown?.reference],
      [payment.amount, payment.payee, payment.reference],
    )
    const other = await customerWithLink()
    assert.deepEqual(await other.phone.client.listPendingConsents(), [])
    // Staff list one conversation's requests, never a customer's pending ones across conversations.
    assert.equal((await problemOf(agent.request('GET', '/v1/consents'))).status, 400)
  })

  test('the audit log records every step and no secret: no link token, no code, no signature', async () => {
    await server.flushAudit()
    const rows = await server.ctx.db
      .selectFrom('audit_events')
      .selectAll()
      .where('tenant_id', '=', bank.tenantId)
      .execute()
    const actions = new Set(rows.map((r) => `${r.action}:${r.outcome}`))
    for (const expected of [
      'channels.pivot.step-up:denied',
      'channels.pivot.redeem:success',
      'device.enrol:success',
      'passkey.authenticate:denied',
      'factor.sms-otp.send:success',
      'factor.sms-otp.verify:failure',
      'risk.sim-swap.check:denied',
    ]) {
      assert.ok(actions.has(expected), expected)
    }
    const everything = JSON.stringify(rows)
    assert.ok(secretsSeen.length > 5)
    for (const secret of secretsSeen) assert.ok(!everything.includes(secret), 'a secret is in the audit log')
    assert.doesNotMatch(everything, /"signature"|clientDataJSON/)
  })
})
