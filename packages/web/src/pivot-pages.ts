/**
 * For browser tests of the pivot: a pages server with a bank whose SMS goes through the simulator, a customer on file,
 * Chromium with the customer's phone (360 px) and the agent's console (1280 px); the customer texts card details (DLP
 * sends the secure link), the agent opens the customer, and the customer opens the link with a texted code.
 */
import assert from 'node:assert/strict'
import { after, before } from 'node:test'
import type { StaffClient } from '@strongroom/sdk'
import { configureSimulatedSms, type TestBank, type TestServer } from '@strongroom/server/testing'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { signInToConsole, startBankPages, watchPage } from './browser-testing.ts'

export interface PivotPages {
  server: TestServer
  bank: TestBank
  agentApi: StaffClient
  browser: Browser
  phoneContext: BrowserContext
  /** The simulator: the customer's phone. */
  phone: Page
  /** The agent's console. */
  agent: Page
  customer: string
}

export async function startPivotPages(options: {
  bankName: string
  customer: { name: string; externalRef: string; phone: string }
  bankNumber: string
  /** Where the pages' script errors and failed requests go (see watchPage). */
  problems: string[]
  acceptDownloads?: boolean
  /** The console's window: 1280 by 900 unless given. */
  agentViewport?: { width: number; height: number }
}): Promise<PivotPages> {
  const { server, bank, agentApi, adminApi, browser } = await startBankPages(options.bankName)
  const { name, externalRef, phone: phoneNumber } = options.customer
  await agentApi.createCustomer({ externalRef, displayName: name, phoneNumber })
  await configureSimulatedSms(adminApi, { bankNumber: options.bankNumber, agentId: bank.agentId })
  const phoneContext = await browser.newContext({
    viewport: { width: 360, height: 740 },
    acceptDownloads: options.acceptDownloads ?? false,
  })
  // Two browsers of one customer may both try to make the group or claim a package first: one gets 409 and goes on.
  phoneContext.on('page', (page) =>
    watchPage(
      page,
      options.problems,
      (status, pathname) => status === 409 && /\/e2e\/(group|key-packages\/claim)$/.test(pathname),
    ),
  )
  const phone = await phoneContext.newPage()
  const agentViewport = options.agentViewport ?? { width: 1280, height: 900 }
  const agent = await (await browser.newContext({ viewport: agentViewport })).newPage()
  watchPage(agent, options.problems)
  return { server, bank, agentApi, browser, phoneContext, phone, agent, customer: name }
}

/** Starts the pages before the suite's tests and stops them after all of them; gives the pages once started. */
export function pivotPagesInSuite(options: Parameters<typeof startPivotPages>[0]): () => PivotPages {
  let pages: PivotPages | undefined
  before(async () => {
    pages = await startPivotPages(options)
  })
  after(async () => {
    await pages?.browser.close()
    await pages?.server.stop()
  })
  return () => {
    assert.ok(pages, 'the pivot pages have not started')
    return pages
  }
}

/** The open conversation's messages in the console. */
export const consoleLog = (p: PivotPages) => p.agent.getByRole('log', { name: `Messages with ${p.customer}` })
/** The messages of the customer's secure chat. */
export const secureLog = (secure: Page) => secure.getByRole('log', { name: 'Messages' })

export const phoneLog = (p: PivotPages) => p.phone.getByRole('log', { name: 'Messages on SMS' })
export const secureLinks = (p: PivotPages) => phoneLog(p).getByRole('link', { name: /\/secure\/#t=srp_/ })

/** The customer texts the bank; the agent signs in and opens the customer's conversation; the link has gone out. */
export async function textTheBank(p: PivotPages, customerPhone: string, text: string): Promise<void> {
  await p.phone.goto(`${p.server.url}/simulator/`)
  await p.phone.getByLabel('Customer’s phone number').fill(customerPhone)
  await p.phone.getByLabel('Message to the bank by SMS').fill(text)
  await p.phone.keyboard.press('Enter')
  await phoneLog(p).locator('.bubble.mine').getByText('Received by the bank').waitFor()
  await signInToConsole(p.agent, p.server.url, p.bank.agentToken)
  await p.agent.getByRole('button', { name: new RegExp(p.customer) }).click()
  await secureLinks(p).first().waitFor()
}

/** The customer opens the latest link and proves it is them with a texted code: the secure chat's page. */
export async function openSecureChat(p: PivotPages): Promise<Page> {
  const [secure] = await Promise.all([p.phoneContext.waitForEvent('page'), secureLinks(p).last().click()])
  const codes = () => phoneLog(p).getByText(/code: \d{6}\./)
  const codesBefore = await codes().count()
  await secure.getByRole('button', { name: 'Text me a code' }).click()
  await codes().nth(codesBefore).waitFor()
  const code = /code: (\d{6})\./.exec((await codes().last().textContent()) ?? '')?.[1]
  assert.ok(code)
  await secure.getByLabel('6-digit code').fill(code)
  await secure.keyboard.press('Enter')
  return secure
}
