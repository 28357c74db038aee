/**
 * Typing and read indicators (issue 20), in Chromium against a real server: after the pivot, the agent types and the
 * customer's secure chat says "Your bank is typing…"; the customer reads the reply and the console marks it "Read";
 * the other way round the same. The indicators are MLS messages the server only relays: the message log holds the
 * messages and nothing else. Axe on both pages with the indicators shown; screenshots in
 * packages/web/test-output/ (indicators-*.png).
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { before, describe, test } from 'node:test'
import type { Page } from 'playwright-core'
import { assertAccessible, outputDir, signInToConsole, WAIT, watchPage, withoutChromium } from './browser-testing.ts'
import { consoleLog, openSecureChat, pivotPagesInSuite, secureLog, textTheBank } from './pivot-pages.ts'

const CUSTOMER_PHONE = '+447700900124'
const CUSTOMER = 'Ada Typing'

describe('typing and read indicators between the console and the secure chat in Chromium', {
  skip: withoutChromium,
}, () => {
  const pageProblems: string[] = []
  const pages = pivotPagesInSuite({
    bankName: 'Typing Bank',
    customer: { name: CUSTOMER, externalRef: 'TYPING-1', phone: CUSTOMER_PHONE },
    bankNumber: '+442071838751',
    problems: pageProblems,
  })
  let agent: Page
  let secure: Page
  before(() => {
    agent = pages().agent
  })
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(outputDir, `indicators-${name}.png`) })

  test('the customer moves to the secure chat and the agent opens it', async () => {
    await textTheBank(pages(), CUSTOMER_PHONE, 'My card 4111 1111 1111 1111 is lost')
    secure = await openSecureChat(pages())
    await secureLog(secure)
      .getByText(/is lost/)
      .waitFor()
    await agent
      .getByRole('region', { name: 'Secure channel' })
      .getByRole('button', { name: 'Open the secure conversation' })
      .click()
    await agent.getByLabel('Reply', { exact: true }).waitFor()
  })

  test('the agent types: the customer sees "Your bank is typing…"; the customer reads the reply: the console says "Read"', async () => {
    const typing = secure.getByRole('status').filter({ hasText: 'Your bank is typing…' })
    // The console joins the group the customer's browser made, then the agent types, key by key.
    await agent.getByText('Waiting for the customer’s browser').waitFor({ state: 'detached', timeout: WAIT })
    await agent.getByLabel('Reply', { exact: true }).pressSequentially('A new card is on its way', { delay: 20 })
    await typing.waitFor({ timeout: WAIT })
    await shot(secure, 'bank-typing')
    await assertAccessible(secure, 'secure chat with the bank typing')
    await agent.getByRole('button', { name: 'Send', exact: true }).click()
    await secureLog(secure).getByText('A new card is on its way').waitFor()
    // Their message came: they are no longer typing.
    await typing.waitFor({ state: 'detached' })
    const agentMessage = consoleLog(pages()).locator('li.message', { hasText: 'A new card is on its way' })
    await agentMessage.getByText('Read', { exact: true }).waitFor({ timeout: WAIT })
    await shot(agent, 'read-by-customer')
  })

  test('the customer types: the console says who is typing; the agent reads the message: the chat says "Read"', async () => {
    await secure.getByLabel('Message', { exact: true }).fill('Thank you')
    const typing = agent.getByRole('status').filter({ hasText: `${CUSTOMER} is typing…` })
    await typing.waitFor({ timeout: WAIT })
    await shot(agent, 'customer-typing')
    await assertAccessible(agent, 'console with the customer typing')
    await secure.keyboard.press('Enter')
    await consoleLog(pages()).getByText('Thank you').waitFor()
    await typing.waitFor({ state: 'detached' })
    const customerMessage = secureLog(secure).locator('li.message', { hasText: 'Thank you' })
    await customerMessage.getByText('Read', { exact: true }).waitFor({ timeout: WAIT })
    // Only the last message read is marked.
    assert.equal(await secureLog(secure).getByText('Read', { exact: true }).count(), 1)
    await shot(secure, 'read-by-bank')
    await assertAccessible(secure, 'secure chat with a read message')
  })

  test('nothing of the indicators is stored: the log holds the two messages, and no row per keystroke or read', async () => {
    const rows = await pages()
      .server.ctx.db.selectFrom('messages')
      .select('ciphertext')
      .where('tenant_id', '=', pages().bank.tenantId)
      .where('content_type', '=', 'message/mls')
      .execute()
    // MLSMessage: version (uint16) then wire format (uint16); 2 is an application message, the rest are commits.
    const applicationMessages = rows.filter((r) => Buffer.from(r.ciphertext)[3] === 2)
    assert.equal(applicationMessages.length, 2, 'the two messages, and no signal')
  })

  test('presence: a supervisor sees the agent available in the picker and the whole team, and away once they say so, live', async () => {
    const supervisor = await pages().bank.staffToken('supervisor', 'Sue Supervisor')
    const other = await pages().bank.staffToken('agent', 'Otto Agent')
    const page = await (await pages().browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage()
    // Not in the conversation's group: the supervisor's browser cannot read its history, and says so.
    watchPage(page, pageProblems, (_status, pathname) => /\/(secure-history|e2e\/group-info)$/.test(pathname))
    await signInToConsole(page, pages().server.url, supervisor.token)
    await page.getByRole('checkbox', { name: 'Whole team' }).check()
    const row = page.getByRole('button', { name: new RegExp(CUSTOMER) })
    await row.getByText('With agent · Available').waitFor({ timeout: WAIT })
    await row.click()
    const picker = page.getByLabel('Give to')
    const panel = page.locator('section').filter({ has: page.getByRole('heading', { name: 'Assignment' }) })
    await panel.getByText('Assigned to agent (Available).').waitFor()
    assert.equal(await picker.locator('option', { hasText: 'Otto Agent (agent) · Offline' }).count(), 1)

    // The agent ticks Away: the supervisor's console says so without a reload.
    await agent.getByRole('checkbox', { name: 'Away' }).check()
    await panel.getByText('Assigned to agent (Away).').waitFor({ timeout: WAIT })
    await row.getByText('With agent · Away').waitFor()
    await shot(page, 'presence-away')
    await assertAccessible(page, 'assignment with presence')
    // Otto opens a console: available in the picker, live.
    const ottoPage = await (await pages().browser.newContext()).newPage()
    await signInToConsole(ottoPage, pages().server.url, other.token)
    await picker.locator('option', { hasText: 'Otto Agent (agent) · Available' }).waitFor({ state: 'attached' })
    await ottoPage.close()
    await picker.locator('option', { hasText: 'Otto Agent (agent) · Offline' }).waitFor({ state: 'attached' })
    await agent.getByRole('checkbox', { name: 'Away' }).uncheck()
    await panel.getByText('Assigned to agent (Available).').waitFor({ timeout: WAIT })
  })

  test('the pages ran with no script error or failed request', () => {
    assert.deepEqual(pageProblems, [])
  })
})
