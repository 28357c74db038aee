/**
 * Encrypted attachments in the secure chat (issue 20, "sends an attachment securely"), in Chromium against a real
 * server: on SMS the console says files are not sent there; after the pivot the agent sends a PDF from the console and
 * the customer's page saves exactly that file; the customer sends a picture and the console shows it; a file over the
 * limit is refused with the limit named; the server holds ciphertext only. Axe on both pages with attachments shown.
 * Screenshots go to packages/web/test-output/ (attachments-*.png).
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { StaffToken, StrongroomClient } from '@strongroom/sdk'
import { configureSimulatedSms, createTestBank, type TestBank, type TestServer } from '@strongroom/server/testing'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import {
  assertAccessible,
  CHROMIUM,
  outputDir,
  startPagesServer,
  watchPage,
  withoutChromium,
} from './browser-testing.ts'

const CUSTOMER_PHONE = '+447700900123'
const BANK_NUMBER = '+442071838750'
const CUSTOMER = 'Ada Files'
const PAN = '4111 1111 1111 1111'
/** A 1×1 PNG: a picture the console must decode to show. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
)
const PDF = Buffer.concat([Buffer.from('%PDF-1.4\n% statement\n'), Buffer.alloc(3000, 0x41), Buffer.from('\n%%EOF\n')])

describe('encrypted attachments between the console and the secure chat in Chromium', { skip: withoutChromium }, () => {
  let server: TestServer
  let bank: TestBank
  let browser: Browser
  let phoneContext: BrowserContext
  let phone: Page
  let agent: Page
  let secure: Page
  const pageProblems: string[] = []

  const phoneLog = () => phone.getByRole('log', { name: 'Messages on SMS' })
  const consoleLog = () => agent.getByRole('log', { name: `Messages with ${CUSTOMER}` })
  const secureLog = () => secure.getByRole('log', { name: 'Messages' })
  const pivotPanel = () => agent.getByRole('region', { name: 'Secure channel' })
  const links = () => phoneLog().getByRole('link', { name: /\/secure\/#t=srp_/ })
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(outputDir, `attachments-${name}.png`) })

  before(async () => {
    server = await startPagesServer()
    bank = await createTestBank(server, 'Files Bank')
    const agentApi = new StrongroomClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    await agentApi.createCustomer({ externalRef: 'FILES-1', displayName: CUSTOMER, phoneNumber: CUSTOMER_PHONE })
    const admin = new StrongroomClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    await configureSimulatedSms(admin, { bankNumber: BANK_NUMBER, agentId: bank.agentId })
    browser = await chromium.launch({ executablePath: CHROMIUM })
    phoneContext = await browser.newContext({ viewport: { width: 360, height: 740 }, acceptDownloads: true })
    phoneContext.on('page', (page) =>
      watchPage(
        page,
        pageProblems,
        (status, pathname) => status === 409 && /\/e2e\/(group|key-packages\/claim)$/.test(pathname),
      ),
    )
    phone = await phoneContext.newPage()
    agent = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage()
    watchPage(agent, pageProblems)
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
  })

  test('on SMS the console offers no file, and says files go only to the secure chat', async () => {
    await phone.goto(`${server.url}/simulator/`)
    await phone.getByLabel('Customer’s phone number').fill(CUSTOMER_PHONE)
    await phone.getByLabel('Message to the bank by SMS').fill(`My card ${PAN} was stolen, I have a police report`)
    await phone.keyboard.press('Enter')
    await phoneLog().locator('.bubble.mine').getByText('Received by the bank').waitFor()

    await agent.goto(`${server.url}/console/`)
    await agent.getByLabel('Staff token').fill(bank.agentToken)
    await agent.keyboard.press('Enter')
    await agent.getByRole('button', { name: new RegExp(CUSTOMER) }).click()
    await consoleLog()
      .getByText(/police report/)
      .waitFor()
    await agent
      .getByText('Files are not sent on SMS: it is not end-to-end encrypted. Send them in the secure chat.')
      .waitFor()
    assert.equal(await agent.getByLabel('Send a file securely').count(), 0)
    await links().first().waitFor()
  })

  test('T294: the agent sends a PDF and the customer saves that very file; the customer sends a picture the agent sees', async () => {
    const [opened] = await Promise.all([phoneContext.waitForEvent('page'), links().last().click()])
    secure = opened
    const codes = () => phoneLog().getByText(/code: \d{6}\./)
    const codesBefore = await codes().count()
    await secure.getByRole('button', { name: 'Text me a code' }).click()
    await codes().nth(codesBefore).waitFor()
    const code = /code: (\d{6})\./.exec((await codes().last().textContent()) ?? '')?.[1]
    assert.ok(code)
    await secure.getByLabel('6-digit code').fill(code)
    await secure.keyboard.press('Enter')
    await secureLog()
      .getByText(/police report/)
      .waitFor()

    await pivotPanel().getByRole('button', { name: 'Open the secure conversation' }).click()
    await agent.getByLabel('Reply', { exact: true }).fill('Please send the report here; here is your statement.')
    await agent.getByRole('button', { name: 'Send', exact: true }).click()
    await secureLog().getByText('Please send the report here; here is your statement.').waitFor()

    await agent
      .getByLabel('Send a file securely')
      .setInputFiles({ name: 'statement.pdf', mimeType: 'application/pdf', buffer: PDF })
    const download = secureLog().getByRole('link', { name: 'Download statement.pdf (PDF, 3 KB)' })
    const [saved] = await Promise.all([secure.waitForEvent('download'), download.click()])
    assert.equal(saved.suggestedFilename(), 'statement.pdf')
    assert.deepEqual(readFileSync(await saved.path()), PDF, 'the customer saved exactly the file the agent sent')

    await secure
      .getByLabel('Send a file securely')
      .setInputFiles({ name: 'police-report.png', mimeType: 'image/png', buffer: PNG })
    const picture = consoleLog().getByRole('img', { name: 'police-report.png' })
    await picture.waitFor()
    assert.equal(await picture.evaluate((img) => (img as HTMLImageElement).naturalWidth), 1, 'the picture decoded')
    await secureLog().getByRole('img', { name: 'police-report.png' }).waitFor()

    // The server holds ciphertext only: neither file's bytes are in what it stored.
    const stored = await server.ctx.db.selectFrom('attachments').select('ciphertext').execute()
    assert.equal(stored.length, 2)
    for (const row of stored) {
      const bytes = Buffer.from(row.ciphertext)
      assert.ok(!bytes.includes(Buffer.from('%PDF')) && !bytes.includes(PNG.subarray(0, 8)))
    }
    await assertAccessible(agent, 'console with attachments')
    await assertAccessible(secure, 'secure chat with attachments')
    await shot(agent, 'console')
    await shot(secure, 'secure-chat')
  })

  test('a file over the limit is refused with the limit named, and nothing is uploaded', async () => {
    await secure.getByLabel('Send a file securely').setInputFiles({
      name: 'scan.pdf',
      mimeType: 'application/pdf',
      buffer: Buffer.alloc(5 * 1024 * 1024 + 1, 0x25),
    })
    await secure.getByRole('alert').getByText('Not sent: This file is too big to send: the limit is 5 MB.').waitFor()
    assert.equal((await server.ctx.db.selectFrom('attachments').select('id').execute()).length, 2)
    await shot(secure, 'too-big')
  })

  test('the pages ran with no script error or failed request', () => {
    assert.deepEqual(pageProblems, [])
  })
})
