/**
 * The console after a break in its stream (its node went away, the office network dropped): what changed meanwhile
 * was said only to the streams open then. A status set by a colleague, a conversation handed to this agent and one
 * taken from them must show once the console is live again, without a reload.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { StaffClient, StaffToken } from '@strongroom/sdk'
import type { TestBank, TestServer } from '@strongroom/server/testing'
import type { Browser, Page, WebSocketRoute } from 'playwright-core'
import { consoleLive, signInToConsole, startBankPages, watchPage, withoutChromium } from '../browser-testing.ts'

describe('the console after its stream was cut', { skip: withoutChromium }, () => {
  let server: TestServer
  let bank: TestBank
  let browser: Browser
  let page: Page
  let agentApi: StaffClient
  let supervisorApi: StaffClient
  const pageProblems: string[] = []
  /** While true, the console's stream cannot reach the server (its sockets are closed as they open). */
  let cut = false
  const open = new Set<WebSocketRoute>()

  before(async () => {
    const started = await startBankPages('Reconnect Bank')
    ;({ server, bank, browser, agentApi } = started)
    const supervisor = await bank.staffToken('supervisor', 'Sam Supervisor')
    supervisorApi = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(supervisor.token) })
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    page = await context.newPage()
    watchPage(page, pageProblems)
    // Every stream socket of the page goes through here, so the test can cut it as a network would.
    await page.routeWebSocket(/\/v1\/stream/, (socket) => {
      if (cut) {
        socket.close({ code: 1006 })
        return
      }
      socket.connectToServer()
      open.add(socket)
    })
    await signInToConsole(page, server.url, bank.agentToken)
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
  })

  test('a status, a conversation given and one taken while cut off show once it is live again', async () => {
    const customer = async (name: string) =>
      agentApi.createCustomer({ externalRef: name.toUpperCase().replace(/ /g, '-'), displayName: name })
    const [stays, leaves, arrives] = await Promise.all([
      customer('Ada Byron'),
      customer('Ben Leaving'),
      customer('Cy New'),
    ])
    const staying = await agentApi.createConversation({ customerId: stays.id, assignedStaffId: bank.agentId })
    const leaving = await agentApi.createConversation({ customerId: leaves.id, assignedStaffId: bank.agentId })
    for (const name of ['Ada Byron', 'Ben Leaving'])
      await page.getByRole('button', { name: new RegExp(name) }).waitFor()

    cut = true
    for (const socket of open) await socket.close({ code: 1006 })
    open.clear()
    await page.getByText('Reconnecting…').waitFor()

    // Meanwhile: a colleague resolves one, the supervisor takes one away and gives the agent a new one.
    await agentApi.setConversationStatus(staying.id, 'resolved')
    const other = await bank.staffToken('agent', 'Olga Other')
    await supervisorApi.assignConversation(leaving.id, { staffId: other.staffId, mode: 'transfer' })
    await supervisorApi.createConversation({ customerId: arrives.id, assignedStaffId: bank.agentId })

    cut = false
    await consoleLive(page).waitFor()
    await page.getByRole('button', { name: /Cy New/ }).waitFor()
    await page.getByRole('button', { name: /Ben Leaving/ }).waitFor({ state: 'detached' })
    await page.getByRole('button', { name: /Ada Byron/ }).click()
    await page.locator('.conversation-head').getByText('Resolved', { exact: true }).waitFor()
    assert.deepEqual(pageProblems, [])
  })
})
