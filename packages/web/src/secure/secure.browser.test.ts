/**
 * The customer's secure chat in a real browser (Debian's Chromium, driven by playwright-core) against a real server:
 * a public SMS conversation is pivoted by an agent (an SDK MLS member), the link opens in the browser, the customer
 * steps up with a passkey (Chromium's virtual authenticator) or an SMS code (read from the dev simulator's phone),
 * and chats end to end encrypted with the imported history above the divider; consent cards are approved (device key,
 * and a passkey when the policy asks) and declined; expired, used and invalid links get their pages; a revoked
 * browser shows the wipe screen with its IndexedDB store erased. Screenshots go to packages/web/test-output/.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { enrolDevice, type PasskeyCreationOptions, type StaffClient } from '@strongroom/sdk'
import {
  encryptedStore,
  generateStoreKey,
  MemoryStore,
  nodeCryptoProvider,
  type SecureEvent,
  SecureMessaging,
} from '@strongroom/sdk/mls-node'
import { configureSimulatedSms, SimulatedPhone, type TestBank, type TestServer } from '@strongroom/server/testing'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import {
  addPlatformAuthenticator,
  assertAccessible,
  eventually,
  outputDir,
  withoutChromium as skip,
  startBankPages,
  WAIT,
  webAuthnOrigin,
} from '../browser-testing.ts'

const BANK_NUMBER = '+442071838750'
const PASSKEY_PHONE = '+447700900301'
const SMS_PHONE = '+447700900302'

describe('the customer’s secure chat in Chromium', { skip }, () => {
  let server: TestServer
  let origin: string
  let bank: TestBank
  let agent: StaffClient
  let agentSecure: SecureMessaging
  const agentRead: SecureEvent[] = []
  let browser: Browser
  let context: BrowserContext
  let page: Page
  let smsContext: BrowserContext
  let smsPage: Page
  const pageProblems: string[] = []
  let passkeyCustomer: { id: string; phone: Awaited<ReturnType<typeof enrolDevice>> }
  let smsCustomerId: string
  let secureConversationId: string
  let usedLink: string
  const publicConversations = new Map<string, string>()

  /** The customer texts the bank; the agent answers on SMS, then invites them to the secure chat. Returns the link. */
  async function conversationPivoted(
    phone: string,
    customerId: string,
  ): Promise<{ link: string; id: string; conversationId: string }> {
    const known = new Set((await agent.listConversations()).map((c) => c.id))
    await new SimulatedPhone(server.url, phone).texts(BANK_NUMBER, 'Hi, is my loan approved?')
    // The first text opens the customer's public conversation; later ones land in it again.
    const opened = (await agent.listConversations()).find((c) => c.customerId === customerId && !known.has(c.id))
    if (opened) publicConversations.set(phone, opened.id)
    const conversation = { id: publicConversations.get(phone) as string }
    assert.ok(conversation.id, 'the SMS opened a public conversation for the customer')
    await agent.request('POST', `/v1/conversations/${conversation.id}/public-messages`, {
      clientMessageId: `answer-${customerId}`,
      text: 'It is. Let us finish in the secure chat.',
    })
    const invited = await agent.request<{ link: { id: string } }>(
      'POST',
      `/v1/conversations/${conversation.id}/pivot`,
      {},
    )
    const link = (await new SimulatedPhone(server.url, phone).lastLink()) ?? ''
    assert.ok(link.startsWith(`${origin}/secure/#t=srp_`), 'the link points at the secure page, token in the fragment')
    return { link, id: invited.link.id, conversationId: conversation.id }
  }
  /** The agent's member reads every new message of the conversation. */
  const agentSync = async (conversationId: string) => {
    if (!(await agentSecure.isMember(conversationId))) await agentSecure.acceptWelcomes()
    if (await agentSecure.isMember(conversationId)) agentRead.push(...(await agentSecure.sync(conversationId)))
  }
  const agentReads = (conversationId: string, text: string) =>
    eventually(
      async () => {
        await agentSync(conversationId)
        return agentRead.some((e) => e.kind === 'message' && e.conversationId === conversationId && e.text === text)
      },
      Boolean,
      `the agent to read "${text}"`,
    )
  const agentJoins = (conversationId: string) =>
    eventually(
      async () => {
        await agentSync(conversationId)
        return agentSecure.isMember(conversationId)
      },
      Boolean,
      'the agent to join the group the browser made',
    )
  const watch = (target: Page) => {
    target.setDefaultTimeout(WAIT)
    target.on('console', (message) => {
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
        pageProblems.push(message.text())
      }
    })
    target.on('pageerror', (error) => pageProblems.push(error.message))
    // Refusals the tests cause on purpose, by route; anything else failing is a problem.
    const expected = [
      /^40[09] \/v1\/pivot\/open$/,
      /^410 \/v1\/pivot\/open$/,
      /^409 \/v1\/conversations\/cnv_[\w-]+\/e2e\/group$/,
      // Members the browser adds if they can be (a phone app that never opened secure messaging has no key package).
      /^409 \/v1\/conversations\/cnv_[\w-]+\/e2e\/key-packages\/claim$/,
      /^403 \/v1\/consents\/con_[\w-]+\/approve$/,
      /^401 \/v1\/devices\/token$/,
      /^404 \/favicon\.ico$/,
    ]
    target.on('response', (response) => {
      const seen = `${response.status()} ${new URL(response.url()).pathname}`
      if (response.status() >= 400 && !expected.some((e) => e.test(seen))) pageProblems.push(seen)
    })
  }
  const shot = (target: Page, name: string) => target.screenshot({ path: path.join(outputDir, `${name}.png`) })

  before(async () => {
    const local = await webAuthnOrigin()
    origin = local.origin
    const started = await startBankPages('Secure Bank', local.overrides)
    ;({ server, bank, agentApi: agent, browser } = started)
    const admin = started.adminApi
    await configureSimulatedSms(admin, { bankNumber: BANK_NUMBER, agentId: bank.agentId })
    // Large payments need a passkey: the consent card then asks for one instead of the device key alone.
    await admin.request('PUT', '/v1/policies/step-up', {
      rules: [
        {
          name: 'large-needs-passkey',
          action: 'consent.approve',
          minAmount: { value: 1_000_000, currency: 'EUR' },
          outcome: { require: ['passkey'] },
        },
      ],
    })
    // The agent's MLS member (as the console makes in the agent's browser): its key packages are in the directory.
    agentSecure = await SecureMessaging.open(agent, {
      provider: nodeCryptoProvider,
      store: encryptedStore(new MemoryStore(), await generateStoreKey()),
    })
    const customer = await agent.request<{ id: string }>('POST', '/v1/customers', {
      externalRef: 'SECURE-PASSKEY',
      displayName: 'Petra Passkey',
      phoneNumber: PASSKEY_PHONE,
    })
    const { code } = await agent.issueEnrolmentCode(customer.id)
    passkeyCustomer = {
      id: customer.id,
      phone: await enrolDevice({ baseUrl: server.url, enrolmentCode: code, label: 'phone app' }),
    }
    smsCustomerId = (
      await agent.request<{ id: string }>('POST', '/v1/customers', {
        externalRef: 'SECURE-SMS',
        displayName: 'Sam Sms',
        phoneNumber: SMS_PHONE,
      })
    ).id

    context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    page = await context.newPage()
    watch(page)
    // Chromium's virtual authenticator: a platform authenticator that verifies the user and holds resident keys.
    await addPlatformAuthenticator(context, page)
    smsContext = await browser.newContext({ viewport: { width: 360, height: 740 } })
    smsPage = await smsContext.newPage()
    watch(smsPage)
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
  })

  test('the secure page without a link says where to start, and passes axe', async () => {
    await page.goto(`${origin}/secure/`)
    await page.getByRole('heading', { name: 'Secure chat', level: 1 }).waitFor()
    await page.getByText('Open the link your bank sent you').waitFor()
    await assertAccessible(page, 'no link')
  })

  test('earlier, from the bank’s app, the customer registered a passkey made by this browser’s authenticator', async () => {
    const options = await passkeyCustomer.phone.client.passkeyRegistrationOptions()
    // No named functions inside: the test runner's transpiler would add a helper the page does not have.
    const credential = await page.evaluate(async (json: PasskeyCreationOptions) => {
      const made = (await navigator.credentials.create({
        publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(json as never),
      })) as PublicKeyCredential
      return made.toJSON()
    }, options)
    const passkey = await passkeyCustomer.phone.client.registerPasskey(credential)
    assert.equal(passkey.credentialId, credential.id)
  })

  test('the pivot link opens, leaves the address bar at once, and the customer steps up with the passkey', async () => {
    const { link, conversationId } = await conversationPivoted(PASSKEY_PHONE, passkeyCustomer.id)
    usedLink = link
    await page.goto(link)
    await page.getByRole('heading', { name: 'Confirm it’s you' }).waitFor()
    assert.equal(new URL(page.url()).hash, '', 'the token is out of the address bar')
    assert.equal(await page.evaluate(() => location.href.includes('srp_')), false)
    await assertAccessible(page, 'step-up')
    await shot(page, 'secure-step-up')
    await page.getByRole('button', { name: 'Use my passkey' }).click()
    await page.getByRole('heading', { name: 'Secure chat', level: 1 }).waitFor()
    const links = await agent.request<{
      links: { status: string; completedVia: string; secureConversationId: string }[]
    }>('GET', `/v1/conversations/${conversationId}/pivot-links`)
    const [completed] = links.links
    assert.deepEqual([completed?.status, completed?.completedVia], ['completed', 'passkey'])
    secureConversationId = completed?.secureConversationId as string
  })

  test('the chat shows the imported SMS history above the divider, then the secure part', async () => {
    const log = page.getByRole('log', { name: 'Messages' })
    await log.getByText('Hi, is my loan approved?').waitFor()
    const items = await log.locator('li').allTextContents()
    const at = (text: string) => items.findIndex((item) => item.includes(text))
    assert.ok(at('Earlier, on SMS') >= 0, 'the divider names the channel')
    assert.ok(at('Earlier, on SMS') < at('Hi, is my loan approved?'))
    assert.ok(at('Hi, is my loan approved?') < at('It is. Let us finish in the secure chat.'))
    assert.ok(at('It is. Let us finish in the secure chat.') < at('only you and your bank can read'))
    // The link's own text is the bank's note about the move: it stays behind, not repeated in the secure history.
    assert.equal(await log.locator('.message.imported').count(), 2, 'the text and the answer')
    assert.equal(await log.getByText(/To continue this conversation/).count(), 0)
    await page.getByText('Enter sends').waitFor()
  })

  test('the agent (an MLS member) writes; the browser decrypts it; the customer answers and the agent decrypts that', async () => {
    await agentJoins(secureConversationId)
    const members = (await agentSecure.members(secureConversationId)).map((m) => m.kind).sort()
    assert.deepEqual(members, ['archive', 'device', 'staff'], 'the browser, the agent and the archive')
    await agentSecure.send(secureConversationId, 'Welcome to the secure chat, Petra.')
    const log = page.getByRole('log', { name: 'Messages' })
    await log.getByText('Welcome to the secure chat, Petra.').waitFor()
    await page.getByRole('textbox', { name: 'Message' }).fill('Thanks. What is the monthly repayment?')
    await page.keyboard.press('Enter')
    await agentReads(secureConversationId, 'Thanks. What is the monthly repayment?')
    await log.getByText('Thanks. What is the monthly repayment?').waitFor()
    assert.equal(await page.getByRole('textbox', { name: 'Message' }).inputValue(), '')
    // The server holds ciphertext only.
    for (const m of await agent.listMessages(secureConversationId)) {
      assert.ok(!Buffer.from(m.ciphertext, 'base64').toString('latin1').includes('monthly repayment'))
    }
    await assertAccessible(page, 'chat')
    await shot(page, 'secure-chat')
  })

  test('a message that expires disappears at its expiry while the page is open', async () => {
    await agentSecure.send(secureConversationId, 'Your one-time reference: 4821', {
      expiresAt: new Date(Date.now() + 6_000),
    })
    const log = page.getByRole('log', { name: 'Messages' })
    const expiring = log.getByText('Your one-time reference: 4821')
    await expiring.waitFor()
    await log.getByText('Disappears at').waitFor()
    await expiring.waitFor({ state: 'detached' })
    await log.getByText('Welcome to the secure chat, Petra.').waitFor()
  })

  test('the customer reports a suspicious text from the secure chat: it reaches the bank with its link judged', async () => {
    await page.getByText('Report a scam message').click()
    const reported = 'Your loan is approved: confirm your details at bit.ly/loan-ok'
    await page.getByLabel('The message you received, as it was (links included)').fill(reported)
    await page.getByRole('button', { name: 'Send report' }).click()
    await page.getByRole('status').filter({ hasText: 'your report is with your bank’s fraud team' }).waitFor()
    const [report] = await agent.listSuspiciousReports()
    assert.deepEqual(
      [report?.source, report?.customerId, report?.text, report?.flags],
      ['secure-chat', passkeyCustomer.id, reported, ['link-shortener']],
    )
    await assertAccessible(page, 'chat with a report sent')
    await page.getByText('Report a scam message').click()
  })

  test('consent cards: one approved with the device key, one declined, one approved with the passkey the policy asks for', async () => {
    const payee = { name: 'Northwind Cars Ltd', account: 'GB29NWBK60161331926819' }
    const approveMe = await agent.requestConsent({
      customerId: passkeyCustomer.id,
      conversationId: secureConversationId,
      amount: { value: 125_000, currency: 'EUR' },
      payee,
      reference: 'Deposit ORDER-7781',
    })
    const declineMe = await agent.requestConsent({
      customerId: passkeyCustomer.id,
      conversationId: secureConversationId,
      amount: { value: 99_999, currency: 'GBP' },
      payee: { name: 'Unknown Trader', account: 'GB33BUKB20201555555555' },
      reference: 'Gift cards',
    })
    const passkeyMe = await agent.requestConsent({
      customerId: passkeyCustomer.id,
      conversationId: secureConversationId,
      amount: { value: 2_450_000, currency: 'EUR' },
      payee,
      reference: 'Balance ORDER-7781',
    })
    const cards = page.getByRole('region', { name: 'Payments to confirm' })
    const card = (title: string) => cards.getByRole('article', { name: title })
    await card('Pay EUR 1,250.00?').waitFor()
    await card('Pay GBP 999.99?').waitFor()
    await card('Pay EUR 24,500.00?').waitFor()
    const first = card('Pay EUR 1,250.00?')
    await first.getByText('Northwind Cars Ltd').waitFor()
    await first.getByText('GB29NWBK60161331926819').waitFor()
    await first.getByText('Deposit ORDER-7781').waitFor()
    await assertAccessible(page, 'consent cards')
    await shot(page, 'secure-consents')

    await first.getByRole('button', { name: 'Approve EUR 1,250.00' }).click()
    await first.getByRole('button', { name: 'Confirm and approve' }).click()
    await first.getByText('Approved.').waitFor()
    const approved = await agent.getConsent(approveMe.id)
    assert.equal(approved.status, 'approved')
    assert.match(approved.receipt ?? '', /^ey[\w-]+\.[\w-]+\.[\w-]+$/, 'a signed receipt (JWS)')

    // From the keyboard alone.
    const second = card('Pay GBP 999.99?')
    await second.getByRole('button', { name: 'Decline' }).focus()
    await page.keyboard.press('Enter')
    await second.getByRole('button', { name: 'Decline, I changed my mind' }).focus()
    await page.keyboard.press('Enter')
    await second.getByText('Declined.').waitFor()
    assert.equal((await agent.getConsent(declineMe.id)).status, 'declined')

    const third = card('Pay EUR 24,500.00?')
    await third.getByRole('button', { name: 'Approve EUR 24,500.00' }).click()
    await third.getByRole('button', { name: 'Confirm and approve' }).click()
    await third.getByText('Approved.').waitFor()
    const byPasskey = await agent.getConsent(passkeyMe.id)
    assert.equal(byPasskey.status, 'approved')
    const claims = JSON.parse(Buffer.from((byPasskey.receipt ?? '').split('.')[1] ?? '', 'base64url').toString())
    assert.ok(JSON.stringify(claims).includes('passkey'), 'the receipt says a passkey approved it')
    await shot(page, 'secure-consents-decided')
  })

  test('this browser is an enrolled device: key non-extractable in IndexedDB, nothing in localStorage', async () => {
    const kept = await page.evaluate(async () => {
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const request = indexedDB.open('strongroom-device')
        request.onsuccess = () => resolve(request.result)
        request.onerror = () => reject(request.error)
      })
      const pair = await new Promise<CryptoKeyPair>((resolve) => {
        const request = db.transaction('keys').objectStore('keys').get('device-key')
        request.onsuccess = () => resolve(request.result)
      })
      db.close()
      return {
        extractable: pair.privateKey.extractable,
        algorithm: (pair.privateKey.algorithm as EcKeyAlgorithm).namedCurve,
        storage: localStorage.length + sessionStorage.length,
      }
    })
    assert.deepEqual(kept, { extractable: false, algorithm: 'P-256', storage: 0 })
  })

  test('back without a link (a reload): the chat opens from the enrolled device and shows the first message fast', async () => {
    await page.goto(`${origin}/secure/`)
    const log = page.getByRole('log', { name: 'Messages' })
    await log.getByText('Welcome to the secure chat, Petra.').waitFor()
    await log.getByText('Thanks. What is the monthly repayment?').waitFor()
    const [first, firstSecure] = await page.evaluate(() =>
      ['first-message', 'first-secure-message'].map((name) => performance.getEntriesByName(name)[0]?.startTime ?? -1),
    )
    console.log(
      `secure chat: first message shown ${Math.round(first ?? -1)} ms after navigation started, ` +
        `first decrypted one ${Math.round(firstSecure ?? -1)} ms`,
    )
    assert.ok((first ?? -1) > 0 && (firstSecure ?? -1) > 0)
  })

  test('a used link gets its page; so do an expired one and a made-up one', async () => {
    await page.goto(usedLink)
    await page.getByRole('heading', { name: 'This link was already used' }).waitFor()
    assert.equal(new URL(page.url()).hash, '')
    await assertAccessible(page, 'link used')
    await shot(page, 'secure-link-used')

    const { link, id } = await conversationPivoted(PASSKEY_PHONE, passkeyCustomer.id)
    await server.ctx.db
      .updateTable('pivot_links')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('id', '=', id)
      .execute()
    await page.goto(link)
    await page.getByRole('heading', { name: 'This link has expired' }).waitFor()
    await shot(page, 'secure-link-expired')

    await page.goto(`${origin}/secure/#t=srp_made-up-token`)
    await page.getByRole('heading', { name: 'This link is not valid' }).waitFor()
    assert.equal(new URL(page.url()).hash, '')
  })

  test('another browser, no passkey: the customer steps up with the code texted to their phone (360 px wide)', async () => {
    const { link } = await conversationPivoted(SMS_PHONE, smsCustomerId)
    await smsPage.goto(link)
    await smsPage.getByRole('heading', { name: 'Confirm it’s you' }).waitFor()
    // The choices come from the server after the heading shows: wait for the one offered before counting and tabbing.
    await smsPage.getByRole('button', { name: 'Text me a code' }).waitFor()
    assert.equal(await smsPage.getByRole('button', { name: 'Use my passkey' }).count(), 0)
    // Keyboard only: the first control after the heading is the one button offered.
    await smsPage.keyboard.press('Tab')
    assert.equal(await smsPage.evaluate(() => document.activeElement?.textContent), 'Text me a code')
    await smsPage.keyboard.press('Enter')
    const code = await eventually(() => new SimulatedPhone(server.url, SMS_PHONE).lastCode(), Boolean, 'the SMS code')
    const input = smsPage.getByLabel('6-digit code')
    await input.waitFor()
    assert.ok(await input.evaluate((element) => element === document.activeElement), 'the code field has focus')
    await smsPage.keyboard.type(code as string)
    await assertAccessible(smsPage, 'sms code')
    await shot(smsPage, 'secure-sms-code-360')
    await smsPage.keyboard.press('Enter')
    const log = smsPage.getByRole('log', { name: 'Messages' })
    await log.getByText('Hi, is my loan approved?').waitFor()
    assert.ok(await smsPage.evaluate(() => document.documentElement.scrollWidth <= 360), 'nothing scrolls sideways')
    const conversationId = await eventually(
      async () =>
        (await agent.listConversations()).find(
          (c) => c.customerId === smsCustomerId && c.members.some((m) => m.kind === 'device'),
        )?.id,
      Boolean,
      'the secure conversation',
    )
    await agentJoins(conversationId as string)
    await agentSecure.send(conversationId as string, 'Hello Sam, you are verified.')
    await log.getByText('Hello Sam, you are verified.').waitFor()
    assert.equal(await log.locator('.placeholder').count(), 0, 'the group-making commit shows as nothing')
    await assertAccessible(smsPage, 'chat at 360 px')
    await shot(smsPage, 'secure-chat-360')
  })

  test('the browser device is revoked: the wipe screen shows and its IndexedDB store is erased', async () => {
    const { devices } = await agent.listDevices(smsCustomerId)
    const browserDevice = devices.find((d) => d.label === 'Web browser' && d.status === 'active')
    assert.ok(browserDevice)
    const databases = () => smsPage.evaluate(async () => (await indexedDB.databases()).map((d) => d.name))
    assert.ok((await databases()).includes('strongroom-device'))
    await agent.revokeDevice(browserDevice.id, 'lost phone')
    await smsPage.getByRole('heading', { name: 'This browser was removed from your account' }).waitFor()
    await eventually(databases, (names) => !names.includes('strongroom-device'), 'the erasure of the store')
    await assertAccessible(smsPage, 'wiped')
    await shot(smsPage, 'secure-wiped-360')
    const [device] = (await agent.listDevices(smsCustomerId)).devices.filter((d) => d.id === browserDevice.id)
    assert.equal(device?.status, 'revoked')
  })

  test('revoked while away: coming back without a link shows the wipe screen, the store erased', async () => {
    const { devices } = await agent.listDevices(passkeyCustomer.id)
    const browserDevice = devices.find((d) => d.label === 'Web browser' && d.status === 'active')
    assert.ok(browserDevice)
    await agent.revokeDevice(browserDevice.id)
    await page.goto(`${origin}/secure/`)
    await page.getByRole('heading', { name: 'This browser was removed from your account' }).waitFor()
    const names = await page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name))
    assert.ok(!names.includes('strongroom-device'))
  })

  test('the pages ran under their policy with no violation or script error', () => {
    assert.deepEqual(pageProblems, [])
  })
})
