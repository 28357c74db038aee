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
import { before, describe, test } from 'node:test'
import type { Page } from 'playwright-core'
import { assertAccessible, outputDir, withoutChromium } from './browser-testing.ts'
import { consoleLog, openSecureChat, pivotPagesInSuite, secureLog, textTheBank } from './pivot-pages.ts'

const CUSTOMER_PHONE = '+447700900123'
const CUSTOMER = 'Ada Files'
const PAN = '4111 1111 1111 1111'
/** A 1×1 PNG: a picture the console must decode to show. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
)
const PDF = Buffer.concat([Buffer.from('%PDF-1.4\n% statement\n'), Buffer.alloc(3000, 0x41), Buffer.from('\n%%EOF\n')])

describe('encrypted attachments between the console and the secure chat in Chromium', { skip: withoutChromium }, () => {
  const pageProblems: string[] = []
  const pages = pivotPagesInSuite({
    bankName: 'Files Bank',
    customer: { name: CUSTOMER, externalRef: 'FILES-1', phone: CUSTOMER_PHONE },
    bankNumber: '+442071838750',
    problems: pageProblems,
    acceptDownloads: true,
  })
  let agent: Page
  let secure: Page
  before(() => {
    agent = pages().agent
  })
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(outputDir, `attachments-${name}.png`) })

  test('on SMS the console offers no file, and says files go only to the secure chat', async () => {
    await textTheBank(pages(), CUSTOMER_PHONE, `My card ${PAN} was stolen, I have a police report`)
    await consoleLog(pages())
      .getByText(/police report/)
      .waitFor()
    await agent
      .getByText('Files are not sent on SMS: it is not end-to-end encrypted. Send them in the secure chat.')
      .waitFor()
    assert.equal(await agent.getByLabel('Send a file securely').count(), 0)
  })

  test('T294: the agent sends a PDF and the customer saves that very file; the customer sends a picture the agent sees', async () => {
    secure = await openSecureChat(pages())
    await secureLog(secure)
      .getByText(/police report/)
      .waitFor()

    await agent
      .getByRole('region', { name: 'Secure channel' })
      .getByRole('button', { name: 'Open the secure conversation' })
      .click()
    await agent.getByLabel('Reply', { exact: true }).fill('Please send the report here; here is your statement.')
    await agent.getByRole('button', { name: 'Send', exact: true }).click()
    await secureLog(secure).getByText('Please send the report here; here is your statement.').waitFor()

    await agent
      .getByLabel('Send a file securely')
      .setInputFiles({ name: 'statement.pdf', mimeType: 'application/pdf', buffer: PDF })
    const download = secureLog(secure).getByRole('link', { name: 'Download statement.pdf (PDF, 3 KB)' })
    const [saved] = await Promise.all([secure.waitForEvent('download'), download.click()])
    assert.equal(saved.suggestedFilename(), 'statement.pdf')
    assert.deepEqual(readFileSync(await saved.path()), PDF, 'the customer saved exactly the file the agent sent')

    await secure
      .getByLabel('Send a file securely')
      .setInputFiles({ name: 'police-report.png', mimeType: 'image/png', buffer: PNG })
    const picture = consoleLog(pages()).getByRole('img', { name: 'police-report.png' })
    await picture.waitFor()
    assert.equal(await picture.evaluate((img) => (img as HTMLImageElement).naturalWidth), 1, 'the picture decoded')
    await secureLog(secure).getByRole('img', { name: 'police-report.png' }).waitFor()

    // The server holds ciphertext only: neither file's bytes are in what it stored.
    const stored = await pages().server.ctx.db.selectFrom('attachments').select('ciphertext').execute()
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
    assert.equal((await pages().server.ctx.db.selectFrom('attachments').select('id').execute()).length, 2)
    await shot(secure, 'too-big')
  })

  test('the pages ran with no script error or failed request', () => {
    assert.deepEqual(pageProblems, [])
  })
})
