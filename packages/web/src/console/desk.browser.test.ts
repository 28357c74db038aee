/**
 * The agent's desk in Chromium (issue 20, item 4): an agent finds a customer by phone number and by a word they
 * wrote, sees their SMS, WhatsApp and secure messages in one timeline, adds an internal note (which reaches neither
 * the customer's phone nor their app), inserts a canned reply with "/", and resolves the conversation; the customer's
 * next text reopens it. axe on each new screen; screenshots in packages/web/test-output/.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { enrolDevice, type Message, type MessageStream } from '@strongroom/sdk'
import { ChannelSimulator } from '@strongroom/sdk/simulator'
import { configureSimulatedChannels, type TestBank, type TestServer } from '@strongroom/server/testing'
import type { Browser, Page } from 'playwright-core'
import WebSocket from 'ws'
import {
  assertAccessible,
  eventually,
  outputDir,
  signInToConsole,
  startBankPages,
  watchPage,
  withoutChromium,
} from '../browser-testing.ts'

const BANK_NUMBER = '+442079460888'
const WHATSAPP_NUMBER_ID = '109876543210888'
const CUSTOMER_PHONE = '+447700900888'
const NOTE = 'Called back on the number on file; customer confirmed the address'
const CANNED = 'We have sent your statement again: it arrives within two working days.'

describe('the agent desk in Chromium', { skip: withoutChromium }, () => {
  let server: TestServer
  let bank: TestBank
  let browser: Browser
  let page: Page
  let phone: ChannelSimulator
  let appStream: MessageStream
  const appReceived: Message[] = []
  const pageProblems: string[] = []

  before(async () => {
    const started = await startBankPages('Desk Browser Bank')
    ;({ server, bank, browser } = started)
    const agent = started.agentApi
    await started.adminApi.request('POST', '/v1/canned-replies', {
      shortcut: 'statement',
      title: 'Statement resent',
      text: CANNED,
    })
    const customer = await agent.createCustomer({
      externalRef: 'DESK-BROWSER',
      displayName: 'Zoë Fischer',
      phoneNumber: CUSTOMER_PHONE,
    })
    // Their app first (a secure conversation), then WhatsApp, then SMS: one customer, three channels.
    const { code } = await agent.issueEnrolmentCode(customer.id)
    const app = await enrolDevice({
      baseUrl: server.url,
      enrolmentCode: code,
      label: 'Phone',
      WebSocket: WebSocket as never,
    })
    const secure = await agent.createConversation({ customerId: customer.id, assignedStaffId: bank.agentId })
    appStream = app.client.stream({ onMessage: (m) => void appReceived.push(m) })
    await appStream.ready()
    await app.client.sendMessage(secure.id, {
      contentType: 'text/plain',
      ciphertext: new TextEncoder().encode('Hello from the app'),
    })
    await configureSimulatedChannels(server.ctx, bank.adminToken, bank.agentId, {
      twilio: BANK_NUMBER,
      whatsapp: WHATSAPP_NUMBER_ID,
    })
    phone = new ChannelSimulator({ baseUrl: server.url })
    await phone.send('whatsapp', { from: CUSTOMER_PHONE.slice(1), to: WHATSAPP_NUMBER_ID, text: 'Here is the letter' })
    await phone.send('twilio', { from: CUSTOMER_PHONE, to: BANK_NUMBER, text: 'My mortgage statement is missing' })
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    page = await context.newPage()
    watchPage(page, pageProblems)
    await signInToConsole(page, server.url, bank.agentToken)
  })

  after(async () => {
    appStream?.close()
    await browser?.close()
    await server?.stop()
  })

  test('the inbox has one line for the customer, with every channel, a preview and the unread count in the title', async () => {
    const line = page.getByRole('button', { name: /Zoë Fischer/ })
    await line.getByText('My mortgage statement is missing').waitFor()
    assert.equal(await line.count(), 1)
    for (const channel of ['SMS', 'WhatsApp', 'Secure']) await line.getByText(channel, { exact: true }).waitFor()
    await line.getByText('3 unread').waitFor()
    await page.waitForFunction(() => document.title === '(3) Agent console')
    await assertAccessible(page, 'inbox by customer')
    await page.screenshot({ path: path.join(outputDir, 'console-desk-inbox.png') })
  })

  test('the agent finds the customer by phone number, then by a word they wrote', async () => {
    const search = page.getByLabel('Find a customer', { exact: true })
    await search.fill('+44 7700 900888')
    await page.getByRole('button', { name: 'Search', exact: true }).click()
    const results = page.getByRole('region', { name: /Found for/ })
    await results
      .getByRole('button', { name: /Zoë Fischer/ })
      .getByText('Matched phone number')
      .waitFor()
    await assertAccessible(page, 'search results')
    await page.screenshot({ path: path.join(outputDir, 'console-desk-search-phone.png') })
    await search.fill('Mortgage')
    await page.keyboard.press('Enter')
    const hit = results.getByRole('button', { name: /Zoë Fischer/ })
    await hit.getByText('Matched message text').waitFor()
    await page.getByLabel('Find a customer', { exact: true }).fill('pension')
    await page.keyboard.press('Enter')
    await page.getByRole('heading', { name: 'Nothing found for “pension”' }).waitFor()
    await search.fill('mortgage')
    await page.keyboard.press('Enter')
    await hit.getByText('Matched message text').waitFor()
    await hit.click()
  })

  test('opening the customer shows every channel in one timeline, in time order, each message marked', async () => {
    const log = page.getByRole('log', { name: 'Messages with Zoë Fischer' })
    await log.getByText('Hello from the app').waitFor()
    await log.getByText('Here is the letter').waitFor()
    await log.getByText('My mortgage statement is missing').waitFor()
    assert.deepEqual(await log.locator('.text').allTextContents(), [
      'Hello from the app',
      'Here is the letter',
      'My mortgage statement is missing',
    ])
    assert.deepEqual(
      (await log.locator('.channel-mark').allTextContents()).map((t) => t.replace(/[·\s]/g, '')),
      ['Secure', 'WhatsApp', 'SMS'],
    )
    await page.waitForFunction(() => document.title === 'Agent console')
  })

  test('a note is kept for staff: it shows beside the conversation and reaches neither the phone nor the app', async () => {
    await page.getByLabel('Add a note').fill(NOTE)
    await page.getByRole('button', { name: 'Save note' }).click()
    await page.getByRole('region', { name: 'Internal notes' }).getByText(NOTE).waitFor()
    await assertAccessible(page, 'conversation with notes')
    await page.screenshot({ path: path.join(outputDir, 'console-desk-timeline.png') })
  })

  test('a canned reply goes in with "/" and its shortcut, and out by SMS', async () => {
    const reply = page.getByLabel('Reply by SMS')
    await reply.fill('/stat')
    await page
      .getByRole('list', { name: 'Canned replies' })
      .getByRole('button', { name: /statement/ })
      .waitFor()
    await assertAccessible(page, 'canned replies')
    await page.keyboard.press('Enter')
    assert.equal(await reply.inputValue(), CANNED)
    await page.keyboard.press('Enter')
    const thread = await eventually(
      () => phone.thread('twilio', CUSTOMER_PHONE),
      (messages) => messages.some((m) => m.text === CANNED),
      'the canned reply on the phone',
    )
    // The note went nowhere: not to the phone on any channel, not to the app.
    const whatsapp = await phone.thread('whatsapp', CUSTOMER_PHONE.slice(1))
    for (const m of [...thread, ...whatsapp]) assert.ok(!m.text.includes('Called back'), m.text)
    assert.ok(
      appReceived.every((m) => !new TextDecoder().decode(Buffer.from(m.ciphertext, 'base64')).includes('Called back')),
    )
  })

  test('the agent resolves the conversation; the customer’s next text reopens it', async () => {
    await page.getByRole('button', { name: 'Resolve' }).click()
    const head = page.locator('.conversation-head')
    await head.getByText('Resolved', { exact: true }).waitFor()
    // Back from the search to the inbox, filtered to resolved conversations.
    await page.getByRole('button', { name: 'Clear search' }).click()
    await page.getByLabel('Status').selectOption('resolved')
    await page.getByRole('button', { name: /Zoë Fischer/ }).waitFor()
    await assertAccessible(page, 'resolved')
    await page.screenshot({ path: path.join(outputDir, 'console-desk-resolved.png') })
    await page.getByLabel('Status').selectOption('all')
    await phone.send('twilio', { from: CUSTOMER_PHONE, to: BANK_NUMBER, text: 'Thank you, it arrived' })
    await page.getByRole('log', { name: 'Messages with Zoë Fischer' }).getByText('Thank you, it arrived').waitFor()
    await head.getByText('Open', { exact: true }).waitFor()
    assert.deepEqual(pageProblems, [])
  })
})
