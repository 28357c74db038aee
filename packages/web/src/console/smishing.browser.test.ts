/**
 * Smishing and spoofing in the agent console, in a real browser (Debian's Chromium, playwright-core) against a real
 * server: inbound SMS with a lookalike of the bank's domain (a digit for a letter, a Cyrillic homograph) and one from
 * a sender claiming the bank's own number are badged as suspicious, on the conversation in the inbox and on the
 * message. Screenshot to packages/web/test-output/.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { configureSimulatedChannels, type TestBank, type TestServer } from '@strongroom/server/testing'
import type { Browser, Page } from 'playwright-core'
import {
  assertAccessible,
  outputDir,
  signInToConsole,
  startBankPages,
  watchPage,
  withoutChromium,
} from '../browser-testing.ts'

const BANK_NUMBER = '+442079460123'

describe('smishing and spoofing badges in the console (Chromium)', { skip: withoutChromium }, () => {
  let server: TestServer
  let bank: TestBank
  let browser: Browser
  let agent: Page
  const pageProblems: string[] = []

  const texts = async (from: string, text: string) => {
    const response = await fetch(`${server.url}/dev/simulator/phone/twilio/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ from, to: BANK_NUMBER, text }),
    })
    assert.equal(((await response.json()) as { status: number }).status, 200)
  }

  before(async () => {
    const started = await startBankPages('Lookalike Bank')
    ;({ server, bank, browser } = started)
    await configureSimulatedChannels(server.ctx, bank.adminToken, bank.agentId, { twilio: BANK_NUMBER })
    await started.adminApi.request('PUT', '/v1/policies/links', {
      domains: ['example-bank.com'],
      senderIds: ['EXAMPLEBNK'],
    })
    agent = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage()
    watchPage(agent, pageProblems)
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
  })

  test('lookalike links (examp1e-bank.com, a Cyrillic homograph) and a spoofed sender are badged', async () => {
    await texts('+447700900201', 'Got this: "Your account is locked, verify at examp1e-bank.com/login" - is it you?')
    await texts('+447700900202', 'And this one: https://ехаmple-bank.com/secure')
    await texts(BANK_NUMBER, 'Your card is blocked. Reply with your PIN.')
    await signInToConsole(agent, server.url, bank.agentToken)
    const items = agent.getByRole('button').filter({ hasText: 'Suspicious' })
    await items.nth(2).waitFor()
    assert.equal(await agent.getByRole('button').filter({ hasText: 'Suspicious: lookalike link' }).count(), 2)
    assert.equal(await agent.getByRole('button').filter({ hasText: 'Suspicious: spoofed sender' }).count(), 1)
    await agent.getByRole('button').filter({ hasText: 'Suspicious: lookalike link' }).first().click()
    await agent
      .getByRole('log', { name: /^Messages with / })
      .locator('.message .badge.risk', { hasText: 'Suspicious: lookalike link' })
      .waitFor()
    await assertAccessible(agent, 'console smishing badges')
    await agent.screenshot({ path: path.join(outputDir, 'console-smishing.png') })
    assert.deepEqual(pageProblems, [])
  })
})
