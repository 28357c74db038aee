/**
 * The public-channel story in a real browser (Debian's Chromium, driven by playwright-core) against a real server,
 * across two pages: the channel simulator playing the customer's phone, and the agent console. A text with a card
 * number arrives masked with a badge, the agent answers on SMS (and is stopped from sending a card number), moves the
 * customer to the secure channel and follows the link's state (sent, expired, completed), and finds the secure
 * conversation with the public history above a divider; the WhatsApp button opens the secure page. Accessibility
 * (axe) on both pages, at 360 px wide. Screenshots go to packages/web/test-output/.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { enrolDevice, type StaffClient } from '@strongroom/sdk'
import { configureSimulatedChannels, type TestBank, type TestServer } from '@strongroom/server/testing'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import {
  assertAccessible,
  outputDir,
  signInToConsole,
  startBankPages,
  watchPage,
  withoutChromium,
} from '../browser-testing.ts'

/** The simulator's default customer number; the bank has it on file for this customer. */
const CUSTOMER_PHONE = '+447700900123'
const WHATSAPP_ID = '447700900123'
const BANK_NUMBER = '+442079460123'
const WHATSAPP_NUMBER_ID = '100000000000001'
const PAN = '4111 1111 1111 1111'

describe('public channels in Chromium: the simulator and the agent console', { skip: withoutChromium }, () => {
  let server: TestServer
  let bank: TestBank
  let agentApi: StaffClient
  let adminApi: StaffClient
  let customerId: string
  let browser: Browser
  let phoneContext: BrowserContext
  let consoleContext: BrowserContext
  let phone: Page
  let agent: Page
  let publicConversationId: string
  const pageProblems: string[] = []

  const phoneLog = (name = 'SMS') => phone.getByRole('log', { name: `Messages on ${name}` })
  const consoleLog = () => agent.getByRole('log', { name: /^Messages with / })
  const pivotPanel = () => agent.getByRole('region', { name: 'Secure channel' })
  const linkState = (state: string) => pivotPanel().locator(`[data-state="${state}"]`)

  async function phoneSends(text: string, name = 'SMS') {
    await phone.getByLabel(`Message to the bank by ${name}`).fill(text)
    await phone.keyboard.press('Enter')
    await phoneLog(name).getByText(text).waitFor()
  }

  before(async () => {
    ;({ server, bank, agentApi, adminApi, browser } = await startBankPages('Public Channel Bank'))
    const customer = await agentApi.request<{ id: string }>('POST', '/v1/customers', {
      externalRef: 'PUBLIC-1',
      displayName: 'Grace Texter',
      phoneNumber: CUSTOMER_PHONE,
    })
    customerId = customer.id
    await configureSimulatedChannels(server.ctx, bank.adminToken, bank.agentId, {
      twilio: BANK_NUMBER,
      whatsapp: WHATSAPP_NUMBER_ID,
    })
    phoneContext = await browser.newContext({ viewport: { width: 360, height: 740 } })
    consoleContext = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    phone = await phoneContext.newPage()
    agent = await consoleContext.newPage()
    watchPage(phone, pageProblems)
    // Refused on purpose below: a reply holding a card number.
    // This server has no SIM-swap provider: the pivot panel's check is answered 503 and the panel shows no warning.
    watchPage(
      agent,
      pageProblems,
      (status, pathname) =>
        (status === 422 && pathname.endsWith('/public-messages')) ||
        (status === 503 && pathname === '/v1/risk/sim-swap'),
    )
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
  })

  test('the simulator at 360 px: SMS to the bank, the demo customer’s number, keyboard and axe clean', async () => {
    await phone.goto(`${server.url}/simulator/`)
    await phone.getByRole('heading', { name: 'Channel simulator', level: 1 }).waitFor()
    assert.equal(await phone.getByRole('radio', { name: 'SMS' }).isChecked(), true)
    // Messenger has no channel at this bank: it cannot be chosen.
    assert.equal(await phone.getByRole('radio', { name: /Messenger/ }).isDisabled(), true)
    assert.equal(await phone.getByLabel('Bank’s SMS number').inputValue(), BANK_NUMBER)
    assert.equal(await phone.getByLabel('Customer’s phone number').inputValue(), CUSTOMER_PHONE)
    await phone.getByRole('heading', { name: /SMS with the bank/ }).waitFor()
    await phone.getByText('No messages yet').waitFor()
    assert.ok(await phone.evaluate(() => document.documentElement.scrollWidth <= 360), 'nothing scrolls sideways')
    await assertAccessible(phone, 'simulator')
    await phone.screenshot({ path: path.join(outputDir, 'simulator-360.png'), fullPage: true })
  })

  test('the customer texts a card number: the bank masks it and answers with a secure link', async () => {
    await phoneSends(`Hello, my card ${PAN} was stolen`)
    const bubble = phoneLog().locator('.bubble.mine').last()
    await bubble.getByText('Received by the bank').waitFor()
    // DLP invites a known customer to the secure channel at once; on SMS the link is in the text.
    await phoneLog()
      .getByRole('link', { name: /\/secure\/#t=srp_/ })
      .waitFor()
    const [conversation] = await agentApi.listConversations()
    assert.ok(conversation)
    publicConversationId = conversation.id
    assert.equal(conversation.customerId, customerId)
  })

  test('the console shows the SMS conversation with its channel, the masked text and a DLP badge', async () => {
    await signInToConsole(agent, server.url, bank.agentToken)
    const item = agent.getByRole('button', { name: /Grace Texter/ })
    await item.getByText('SMS', { exact: true }).waitFor()
    await item.getByText(/unread/).waitFor()
    await item.click()
    await agent.getByRole('heading', { name: 'Grace Texter', level: 2, exact: true }).waitFor()
    await agent.locator('.conversation-head').getByText('SMS', { exact: true }).waitFor()
    const masked = consoleLog().locator('.message', { hasText: 'was stolen' })
    await masked.getByText('Hello, my card [card •••• 1111] was stolen').waitFor()
    await masked.getByText('Masked by DLP: card number').waitFor()
    assert.equal(await agent.getByText('4111 1111 1111 1111').count(), 0, 'the card number is nowhere on the page')
    // The automatic invitation: on SMS a bare link (no button), and its state as sent.
    await consoleLog().getByText('Secure link (single use)').waitFor()
    await linkState('sent').waitFor()
    await assertAccessible(agent, 'console public conversation')
    await agent.screenshot({ path: path.join(outputDir, 'console-public-conversation.png') })
  })

  test('the agent replies by SMS: the phone gets it and the console shows it delivered', async () => {
    const reply = agent.getByLabel('Reply by SMS')
    await reply.fill('Thank you. I have blocked that card.')
    await agent.keyboard.press('Enter')
    await phoneLog().getByText('Thank you. I have blocked that card.').waitFor()
    // The simulated phone sends the provider's delivery receipt; the console follows it.
    const sent = consoleLog().locator('.message.from-you', { hasText: 'I have blocked that card' })
    await sent.getByText('Delivered').waitFor()
    assert.equal(await reply.inputValue(), '')
  })

  test('a reply with a card number is refused and explained, and never reaches the phone', async () => {
    const before = await phoneLog().locator('.bubble').count()
    await agent.getByLabel('Reply by SMS').fill(`Is it ${PAN}?`)
    await agent.keyboard.press('Enter')
    await agent.getByRole('alert').getByText('card or account details cannot go out on SMS').waitFor()
    assert.equal(await agent.getByLabel('Reply by SMS').inputValue(), `Is it ${PAN}?`, 'kept for the agent to edit')
    assert.equal(await phoneLog().locator('.bubble').count(), before)
    await agent.getByLabel('Reply by SMS').fill('')
    // Edited, the refusal no longer stands: its alert goes.
    await agent
      .getByRole('alert')
      .getByText('card or account details cannot go out on SMS')
      .waitFor({ state: 'detached' })
  })

  test('the automatic link is the live one; "Replace with a new link" sends one that replaces it', async () => {
    const links = () => phoneLog().getByRole('link', { name: /\/secure\/#t=srp_/ })
    assert.equal(await links().count(), 1)
    assert.equal(await pivotPanel().getByRole('button', { name: 'Move to secure channel' }).count(), 0)
    await pivotPanel().getByRole('button', { name: 'Replace with a new link' }).click()
    await links().nth(1).waitFor()
    await linkState('sent').waitFor()
    assert.equal((await agentApi.listPivotLinks(publicConversationId)).length, 2)
    await phone.screenshot({ path: path.join(outputDir, 'simulator-sms-link-360.png'), fullPage: true })
  })

  test('a link not used in time shows as expired, live', async () => {
    await server.ctx.db
      .updateTable('pivot_links')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('conversation_id', '=', publicConversationId)
      .execute()
    // The pivot housekeeping (once a minute; run now) tells the open console, which shows it without a reload.
    await server.flushHousekeeping()
    await linkState('expired').waitFor()
    await pivotPanel()
      .getByText(/Not used in time/)
      .waitFor()
  })

  test('the customer uses a new link: completed, and the secure conversation shows the public history above a divider', async () => {
    const { code } = await agentApi.issueEnrolmentCode(customerId)
    const { client: device } = await enrolDevice({ baseUrl: server.url, enrolmentCode: code, label: 'Phone' })
    await pivotPanel().getByRole('button', { name: 'Send a new secure link' }).click()
    await linkState('sent').waitFor()
    const href = await phoneLog()
      .getByRole('link', { name: /\/secure\/#t=srp_/ })
      .last()
      .getAttribute('href')
    const token = /#t=([A-Za-z0-9_-]+)$/.exec(href ?? '')?.[1]
    assert.ok(token)
    // What the secure page does with the link, as the customer's enrolled device.
    await device.request('POST', '/v1/pivot/redeem', { token })
    await linkState('completed').waitFor()
    await phoneLog()
      .getByText(/continues on our secure page/)
      .waitFor()
    await pivotPanel().getByRole('button', { name: 'Open the secure conversation' }).click()
    const head = agent.locator('.conversation-head')
    await head.getByText('Secure', { exact: true }).waitFor()
    await head.getByText('moved from SMS').waitFor()
    const log = consoleLog()
    await log.getByText('Hello, my card [card •••• 1111] was stolen').waitFor()
    await log.getByText(/Secure channel: end-to-end encrypted from here/).waitFor()
    // One timeline for the customer: the SMS conversation itself is the history (its messages once, not the copies
    // the pivot imported into the secure conversation).
    assert.equal(await log.getByText('Hello, my card [card •••• 1111] was stolen').count(), 1)
    // The divider comes after the whole public history.
    const order = await log
      .locator('li')
      .evaluateAll((items) => items.map((li) => (li.classList.contains('secure-divider') ? 'divider' : 'message')))
    assert.equal(order.filter((kind) => kind === 'divider').length, 1)
    assert.equal(order.at(-2), 'divider', 'nothing secure yet: the divider ends the history')
    await assertAccessible(agent, 'console secure conversation')
    await agent.screenshot({ path: path.join(outputDir, 'console-secure-after-pivot.png') })
  })

  test('inbox filters: by channel, unread and assigned to me', async () => {
    const colleague = await bank.staffToken('agent', 'colleague')
    const theirs = await adminApi.createConversation({ customerId, assignedStaffId: colleague.staffId })
    await adminApi.addMember(theirs.id, { kind: 'staff', id: bank.agentId })
    const inbox = agent.getByRole('navigation', { name: 'Inbox' })
    // One line per customer: the SMS conversation, the secure one and the colleague's are all Grace's.
    const line = inbox.locator('.inbox-item')
    await line.first().getByText('SMS', { exact: true }).waitFor()
    await line.first().getByText('Secure', { exact: true }).waitFor()
    const count = () => line.count()
    assert.equal(await count(), 1)
    await agent.getByLabel('Channel').selectOption('twilio')
    await line.first().getByText('SMS', { exact: true }).waitFor()
    assert.equal(await count(), 1)
    await agent.getByLabel('Channel').selectOption('secure')
    assert.equal(await count(), 1)
    await agent.getByLabel('Assigned to me').check()
    assert.equal(await count(), 1, 'Grace’s own conversations stay listed')
    await agent.getByLabel('Unread').check()
    assert.equal(await count(), 1, 'the open conversation stays listed')
    await agent.getByLabel('Channel').selectOption('whatsapp')
    await inbox.getByText('No conversation matches these filters.').waitFor()
    await agent.getByLabel('Unread').uncheck()
    await agent.getByLabel('Assigned to me').uncheck()
    await agent.getByLabel('Channel').selectOption('all')
    assert.equal(await count(), 1)
  })

  test('on WhatsApp the link is a button that opens the secure page in a new tab', async () => {
    await phone.getByRole('radio', { name: 'WhatsApp' }).check()
    await phone.getByLabel('Customer’s WhatsApp number').fill(WHATSAPP_ID)
    await phoneSends('Hi on WhatsApp', 'WhatsApp')
    const item = agent.getByRole('button', { name: /Grace Texter.*WhatsApp/ })
    await item.click()
    await agent.locator('.conversation-head').getByText('WhatsApp', { exact: true }).waitFor()
    await consoleLog().getByText('Hi on WhatsApp').waitFor()
    await pivotPanel().getByRole('button', { name: 'Move to secure channel' }).click()
    const button = phoneLog('WhatsApp').getByRole('link', { name: 'Continue securely' })
    await button.waitFor()
    await phone.screenshot({ path: path.join(outputDir, 'simulator-whatsapp-button-360.png'), fullPage: true })
    // The link's token must not leak to the page it opens from, nor the page back to the simulator.
    assert.deepEqual((await button.getAttribute('rel'))?.split(' ').sort(), ['noopener', 'noreferrer'])
    const [opened] = await Promise.all([phoneContext.waitForEvent('page'), button.click()])
    await opened.waitForLoadState()
    assert.equal(new URL(opened.url()).pathname, '/secure/')
    assert.equal(await opened.evaluate(() => window.opener), null)
    await opened.close()
    await assertAccessible(phone, 'simulator WhatsApp thread')
  })

  test("a customer's markup and script URLs stay text on both pages", async () => {
    const hostile = '<img src=x onerror="document.title=1"> <b>bold</b> javascript:alert(1)'
    await phoneSends(hostile, 'WhatsApp')
    await consoleLog().getByText(hostile).waitFor()
    for (const page of [phone, agent]) {
      assert.equal(await page.locator('img, b').count(), 0, 'no element made from the text')
      assert.equal(await page.locator('a[href^="javascript:"]').count(), 0, 'no script link')
      assert.notEqual(await page.title(), '1')
    }
  })

  test('the console at 360 px: the public conversation with its pivot panel fits, axe clean', async () => {
    await agent.setViewportSize({ width: 360, height: 740 })
    await pivotPanel().waitFor()
    assert.ok(await agent.evaluate(() => document.documentElement.scrollWidth <= 360))
    await assertAccessible(agent, 'console public conversation 360')
    await agent.screenshot({ path: path.join(outputDir, 'console-public-conversation-360.png'), fullPage: true })
    await agent.getByRole('button', { name: 'Back to inbox' }).click()
    await agent.getByLabel('Channel').waitFor()
    assert.ok(await agent.evaluate(() => document.documentElement.scrollWidth <= 360))
    await assertAccessible(agent, 'console inbox 360')
    await agent.screenshot({ path: path.join(outputDir, 'console-inbox-filters-360.png'), fullPage: true })
  })

  test('both pages ran under their policy with no violation or script error', () => {
    assert.deepEqual(pageProblems, [])
  })
})
