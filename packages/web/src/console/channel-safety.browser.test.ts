/**
 * Channel safety in the console, in a real browser (Debian's Chromium, playwright-core) against a real server: a card
 * number typed over two SMS (the agent watching the conversation sees the first part as typed; when the second part
 * arrives, the first is masked in place, without a reload, with a note saying why), and a customer's report of a
 * smishing text, read and closed from "Reported messages". Screenshots to packages/web/test-output/.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { ChannelSimulator } from '@strongroom/sdk/simulator'
import { configureSimulatedChannels, type TestBank, type TestServer } from '@strongroom/server/testing'
import type { Browser, Page } from 'playwright-core'
import {
  assertAccessible,
  outputDir,
  signInToConsole,
  startBankPages,
  WAIT,
  watchPage,
  withoutChromium,
} from '../browser-testing.ts'

const BANK_NUMBER = '+442079460124'
const CUSTOMER = '+447700900311'

describe('split card numbers and reported messages in the console (Chromium)', { skip: withoutChromium }, () => {
  let server: TestServer
  let bank: TestBank
  let browser: Browser
  let agent: Page
  const pageProblems: string[] = []

  const texts = async (text: string, from = CUSTOMER) => {
    const sent = await new ChannelSimulator({ baseUrl: server.url }).send('twilio', { from, to: BANK_NUMBER, text })
    assert.equal(sent.status, 200)
  }

  before(async () => {
    const started = await startBankPages('Split Card Bank')
    ;({ server, bank, browser } = started)
    await configureSimulatedChannels(server.ctx, bank.adminToken, bank.agentId, { twilio: BANK_NUMBER })
    await started.adminApi.request('PUT', '/v1/policies/links', { domains: ['example-bank.com'], senderIds: [] })
    agent = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage()
    watchPage(agent, pageProblems)
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
  })

  test('the first part is masked in place when the second arrives, with a note saying why', async () => {
    await texts('my card number is 4111 1111')
    await signInToConsole(agent, server.url, bank.agentToken)
    await agent.getByRole('button').filter({ hasText: 'my card number is' }).first().click()
    const log = agent.getByRole('log', { name: /^Messages with / })
    const firstPart = log.locator('.message', { hasText: 'my card number is' })
    await firstPart.getByText('my card number is 4111 1111').waitFor()
    assert.equal(await log.getByRole('note').count(), 0)
    // A mark on this page: still there at the end means the page was never reloaded.
    await agent.evaluate(() => Object.assign(window, { beforeSecondPart: true }))

    await texts('1111 1111 thanks')
    await log.getByText('[card, continued] thanks').waitFor()
    await firstPart.getByText('my card number is [card •••• 1111]').waitFor({ timeout: WAIT })
    const note = firstPart.getByRole('note')
    assert.equal(await note.textContent(), 'Masked after a later message completed a card number')
    // Nothing of the number is left on the screen, and nothing was reloaded to get there.
    assert.equal(await log.getByText('4111 1111', { exact: false }).count(), 0)
    assert.equal(await agent.evaluate(() => 'beforeSecondPart' in window), true)
    await assertAccessible(agent, 'console split card masked')
    await agent.screenshot({ path: path.join(outputDir, 'console-split-card.png') })
    assert.deepEqual(pageProblems, [])
  })

  test('a report forwarded by SMS is listed with its link judged, and closed by the agent', async () => {
    await texts('REPORT Your card is blocked, unblock at https://examp1e-bank.com/login', '+447700900312')
    await agent.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: 'Reported messages' }).click()
    const reports = agent.getByRole('main', { name: 'Reported messages' })
    const report = reports.getByRole('listitem').filter({ hasText: 'Your card is blocked' })
    await report.waitFor()
    assert.match((await report.textContent()) ?? '', /Forwarded by SMS/)
    await report.getByText('examp1e-bank.com: lookalike of the bank’s domain').waitFor()
    await assertAccessible(agent, 'console reported messages')
    await agent.screenshot({ path: path.join(outputDir, 'console-reported-messages.png') })
    await report.getByRole('button', { name: 'Smishing' }).click()
    await reports.getByRole('status').getByText('No open reports.').waitFor()
    assert.deepEqual(pageProblems, [])
  })
})
