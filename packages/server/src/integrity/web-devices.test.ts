/**
 * Customers in a browser under the integrity gate (issue 23, item 1): a browser is a device of its own kind, which
 * cannot attest. Where the bank requires integrity tokens (production), a browser reads and chats as the tenant's
 * policy allows without one, approves payments only with a user-verified passkey up to the tenant's limit, and never
 * receives runtime secrets; an app still needs its token. (The pivot's step-up makes browsers of this kind: see
 * pivot-step-up.test.ts.)
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  type ConsentRequest,
  consentPasskeyChallenge,
  type enrolDevice,
  StaffClient,
  StaffToken,
} from '@strongroom/sdk'
import type { StepUpPolicy } from '@strongroom/sdk/protocol'
import { formatAccessTable } from '../platform/http/access-rule.ts'
import { eventually } from '../testing/eventually.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { PROBLEMS, problemOf } from '../testing/problems.ts'
import { SoftwareAuthenticator } from '../testing/software-authenticator.ts'
import { DEFAULT_INTEGRITY_POLICY } from './policy.ts'

type Enrolled = Awaited<ReturnType<typeof enrolDevice>>

describe('a browser under the production integrity gate', () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient
  let admin: StaffClient
  let browser: Enrolled
  let app: Enrolled
  let conversationId: string
  let passkey: SoftwareAuthenticator
  const refusedAs = async (kind: string, call: Promise<unknown>, detail?: RegExp) => {
    const problem = await problemOf(call)
    assert.equal(problem.type, PROBLEMS + kind, problem.message)
    if (detail) assert.match(problem.problem.detail ?? '', detail)
  }
  const send = (device: Enrolled, text: string, clientMessageId?: string) =>
    device.client.sendMessage(conversationId, {
      contentType: 'text/plain',
      ciphertext: new TextEncoder().encode(text),
      ...(clientMessageId && { clientMessageId }),
    })
  const payment = (value: number) => ({
    customerId: bank.customerId,
    amount: { value, currency: 'GBP' },
    payee: { name: 'Card Services', account: 'GB29NWBK60161331926819' },
    reference: 'Replacement card',
  })
  const ask = async (value: number) => browser.client.getConsent((await agent.requestConsent(payment(value))).id)
  const passkeyApproval = async (consent: ConsentRequest, overrides = {}) =>
    browser.client.approveConsentWithPasskey(
      consent.id,
      passkey.assert({ challenge: await consentPasskeyChallenge(consent) }, overrides) as never,
    )

  before(async () => {
    server = await startTestServer({ integrityRequired: true })
    bank = await createTestBank(server, 'Browser Bank')
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    app = await bank.enrol('phone')
    browser = await bank.enrol('Browser')
    // What the pivot's step-up records for the browser it enrols (pivot-step-up.test.ts checks that it does).
    await server.ctx.db.updateTable('devices').set({ kind: 'web' }).where('id', '=', browser.device.id).execute()
    conversationId = (await agent.request<{ id: string }>('POST', '/v1/conversations', { customerId: bank.customerId }))
      .id
    passkey = new SoftwareAuthenticator({
      origin: (server.config.rpOrigins as string).split(',')[0] as string,
      rpId: server.config.rpId as string,
    })
  })
  after(() => server.stop())

  test("what a browser may do is in each route's own rule, so the one access table shows it", () => {
    const forBrowsers = server.accessTable
      .filter((row) => 'browser' in row.access && row.access.browser)
      .map((row) => `${row.method} ${row.url} ${'browser' in row.access ? row.access.browser : ''}`)
    assert.deepEqual(forBrowsers.sort(), [
      'DELETE /v1/e2e/welcomes/:welcomeId chat',
      'GET /v1/conversations/:conversationId/attachments/:attachmentId chat',
      'GET /v1/stream chat',
      'POST /v1/consents/:consentId/approve/passkey always',
      'POST /v1/consents/:consentId/decline always',
      'POST /v1/conversations/:conversationId/attachments chat',
      'POST /v1/conversations/:conversationId/e2e/commits chat',
      'POST /v1/conversations/:conversationId/e2e/key-packages/claim chat',
      'POST /v1/conversations/:conversationId/e2e/readd-requests chat',
      'POST /v1/conversations/:conversationId/markers chat',
      'POST /v1/conversations/:conversationId/messages chat',
      'POST /v1/e2e/credentials chat',
      'POST /v1/e2e/key-packages chat',
      'POST /v1/passkeys/authentication/options always',
      'POST /v1/passkeys/registration always',
      'POST /v1/passkeys/registration/options always',
      'POST /v1/pivot/redeem always',
      'POST /v1/suspicious-reports always',
      'PUT /v1/conversations/:conversationId/e2e/group chat',
    ])
    const printed = formatAccessTable(server.accessTable).split('\n')
    assert.ok(printed.some((line) => /^POST +\/v1\/pivot\/redeem +device +browser always$/.test(line)))
  })

  test('staff see which device is a browser', async () => {
    const { devices } = await agent.listDevices(bank.customerId)
    assert.deepEqual(
      devices.map((d) => [d.label, d.kind]),
      [
        ['phone', 'app'],
        ['Browser', 'web'],
      ],
    )
  })

  test('it reads and chats without an integrity token, where an app without one is refused', async () => {
    await refusedAs('integrity/missing', send(app, 'from the app'))
    await refusedAs('integrity/missing', app.client.listConversations())
    assert.equal((await browser.client.listConversations()).length, 1)
    const sent = await send(browser, 'from the browser')
    assert.equal(sent.seq, 1)
    assert.deepEqual(
      (await browser.client.listMessages(conversationId)).map((m) => Buffer.from(m.ciphertext, 'base64').toString()),
      ['from the browser'],
    )
  })

  test('it never receives runtime secrets, and may not do what is the app’s', async () => {
    await refusedAs('integrity/web-device-refused', browser.client.request('GET', '/v1/secrets/api-key'), /secrets/)
    await refusedAs(
      'integrity/web-device-refused',
      browser.client.request('POST', '/v1/integrity/secrets-key', { publicJwk: { kty: 'OKP' } }),
    )
    await refusedAs('integrity/web-device-refused', browser.client.request('POST', '/v1/factors/totp', {}), /totp/)
    // Approving with the device key alone is the app's way; a browser approves with a passkey.
    const consent = await ask(1000)
    await refusedAs(
      'integrity/web-device-refused',
      browser.client.request('POST', `/v1/consents/${consent.id}/approve`, { signature: 'x.y.z' }),
    )
    await server.flushAudit()
    const refusals = await server.ctx.db
      .selectFrom('audit_events')
      .select(['reason', 'details'])
      .where('action', '=', 'auth.refuse')
      .where('actor_id', '=', browser.device.id)
      .execute()
    assert.ok(refusals.length >= 4)
    assert.ok(refusals.every((r) => r.reason === 'integrity/web-device-refused'))
  })

  test('it approves only with a user-verified passkey, up to the tenant’s limit for browsers', async () => {
    await browser.client.registerPasskey(passkey.register(await browser.client.passkeyRegistrationOptions()))
    // Without a limit for browsers, a browser approves nothing.
    await refusedAs('auth/forbidden', passkeyApproval(await ask(2500)), /above the browser approval limit/)
    const policy: StepUpPolicy = { rules: [], webDeviceMaxAmount: [{ value: 5000, currency: 'GBP' }] }
    await admin.request('PUT', '/v1/policies/step-up', policy)

    const withinLimit = await ask(2500)
    // A passkey that did not verify the user is no proof here at all.
    await refusedAs('consent/signature-invalid', passkeyApproval(withinLimit, { userVerified: false }))
    const approved = await passkeyApproval(withinLimit)
    assert.equal(approved.status, 'approved')

    await refusedAs('auth/forbidden', passkeyApproval(await ask(5001)), /above the browser approval limit/)
    const euros = await browser.client.getConsent(
      (await agent.requestConsent({ ...payment(100), amount: { value: 100, currency: 'EUR' } })).id,
    )
    await refusedAs('auth/forbidden', passkeyApproval(euros), /above the browser approval limit/)
    // Declining is always open to it.
    const declined = await browser.client.request<ConsentRequest>('POST', `/v1/consents/${euros.id}/decline`, {})
    assert.equal(declined.status, 'declined')
  })

  test('a tenant that does not let browsers chat: reading still works, sending is refused, on the stream too', async () => {
    // Over the stream, a browser signs in and sends without an integrity token, where an app cannot sign in.
    const stream = browser.client.stream()
    await stream.ready()
    assert.equal(
      (await stream.send(conversationId, { contentType: 'text/plain', ciphertext: new Uint8Array([1]) })).seq,
      2,
    )
    const appErrors: string[] = []
    const appStream = app.client.stream({ onError: (e) => appErrors.push(e.message) })
    await eventually(
      () => appErrors,
      (errors) => errors.some((m) => m.startsWith('An integrity token is required')),
    )
    appStream.close()

    await admin.request('PUT', '/v1/policies/integrity', { ...DEFAULT_INTEGRITY_POLICY, webDevices: { chat: false } })
    // Nodes apply a policy change within their cache time (five seconds); the same message id until then.
    const refused = await eventually(
      () =>
        send(browser, 'still chatting?', 'probe').then(
          () => undefined,
          (error: unknown) => error,
        ),
      (error) => error !== undefined,
    )
    assert.match(String(refused), /the bank does not let browsers chat/)
    // The open stream's send frame is held to the same rule as POST …/messages.
    await assert.rejects(
      stream.send(conversationId, { contentType: 'text/plain', ciphertext: new Uint8Array([2]) }),
      /the bank does not let browsers chat/,
    )
    stream.close()
    const stored = (await browser.client.listMessages(conversationId)).map((m) => m.ciphertext)
    assert.ok(stored.includes(Buffer.from([1]).toString('base64')), 'the stream’s first send was stored')
    assert.ok(!stored.includes(Buffer.from([2]).toString('base64')), 'the refused send was not')
  })
})
