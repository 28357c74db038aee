/**
 * Secure text in the console's "Find a customer" (issue 20, item 4) in Chromium: the desk's search never sees secure
 * (end-to-end encrypted) messages, so for staff holding `archive:read` the search also asks the compliance archive's
 * text search, shows what it finds marked as from the archive, and the archive records the search in the audit log
 * as it records every archive search. An agent, who does not hold `archive:read`, gets neither the section nor the
 * archive's words. axe on the screen; a screenshot in packages/web/test-output/.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { archiveRecords, type TestBank, type TestServer } from '@strongroom/server/testing'
import type { Browser, Page } from 'playwright-core'
import {
  assertAccessible,
  outputDir,
  signInToConsole,
  startBankPages,
  watchPage,
  withoutChromium,
} from '../browser-testing.ts'

const CUSTOMER = 'Imogen Solent'
const SECURE_TEXT = 'Please send the deposit to my solicitor on Friday'

describe('secure text found through the archive in the console’s search', { skip: withoutChromium }, () => {
  let server: TestServer
  let bank: TestBank
  let browser: Browser
  let conversationId: string
  let customerId: string
  const pageProblems: string[] = []

  async function signedIn(token: string): Promise<Page> {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage()
    // The console asks for payment requests and a customer's devices and factors, which a compliance officer may not
    // read (consents:write, customers:write): it shows no payment or customer tools instead.
    watchPage(
      page,
      pageProblems,
      (status, pathname) => status === 403 && (pathname.startsWith('/v1/customers/') || pathname === '/v1/consents'),
    )
    await signInToConsole(page, server.url, token)
    return page
  }

  async function search(page: Page, q: string): Promise<void> {
    await page.getByLabel('Find a customer').fill(q)
    await page.getByRole('button', { name: 'Search', exact: true }).click()
  }

  before(async () => {
    const started = await startBankPages('Archive Search Bank')
    ;({ server, bank, browser } = started)
    const agent = started.agentApi
    const customer = await agent.createCustomer({ externalRef: 'ARCH-1', displayName: CUSTOMER })
    customerId = customer.id
    conversationId = (await agent.createConversation({ customerId: customer.id, assignedStaffId: bank.agentId })).id
    // What the archive member decrypted of the secure conversation: the customer's message, sealed in the archive.
    await archiveRecords(server.ctx, [
      {
        tenantId: bank.tenantId,
        recordClass: 'secure-message',
        sourceRef: `mls:${conversationId}:1`,
        conversationId,
        conversationSeq: 1,
        customerId: customer.id,
        occurredAt: new Date(Date.now() - 60_000),
        content: { sender: { kind: 'customer', id: customer.id }, text: SECURE_TEXT },
      },
    ])
    await server.flushArchive()
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
  })

  const archiveSearches = async () =>
    server.ctx.db
      .selectFrom('audit_events')
      .select(['actor_id', 'details'])
      .where('tenant_id', '=', bank.tenantId)
      .where('action', '=', 'archive.search')
      .execute()

  test('an agent’s search finds no secure text and offers no archive', async () => {
    const page = await signedIn(bank.agentToken)
    await search(page, 'solicitor')
    await page.getByRole('heading', { name: 'Nothing found for “solicitor”' }).waitFor()
    assert.equal(await page.getByText('Secure messages, from the archive').count(), 0)
    assert.equal(await page.getByText(SECURE_TEXT).count(), 0)
    assert.deepEqual(await archiveSearches(), [])
    assert.deepEqual(pageProblems, [])
  })

  test('a compliance officer’s search shows the secure message marked as from the archive, audited', async () => {
    const officer = await bank.staffToken('compliance', 'Olive Officer')
    const page = await signedIn(officer.token)
    // Compliance officers land on the archive's screen; the search is in the conversations'.
    await page.getByRole('button', { name: 'Conversations', exact: true }).click()
    await search(page, 'solicitor')
    await page.getByRole('heading', { name: 'No customer or public message matches “solicitor”' }).waitFor()
    const section = page.getByRole('region', { name: 'Secure messages, from the archive' })
    // A compliance officer reads customers' names (customers:export): the hit names the customer, not their id.
    const hit = section.getByRole('button', { name: new RegExp(CUSTOMER) })
    await hit.getByText(SECURE_TEXT).waitFor()
    await hit.getByText('From the archive').waitFor()
    await hit.getByText('Customer wrote').waitFor()
    await assertAccessible(page, 'search with archive hits')
    await page.screenshot({ path: path.join(outputDir, 'console-search-archive.png') })

    // Audited as every archive search: who, that it was a text search, how many found; never the words.
    const audited = await archiveSearches()
    assert.equal(audited.length, 1)
    assert.equal(audited[0]?.actor_id, officer.staffId)
    const details = JSON.parse(audited[0]?.details ?? '{}')
    assert.equal(details.text, true)
    assert.equal(details.results, 1)
    assert.doesNotMatch(audited[0]?.details ?? '', /solicitor/)

    // The hit opens the customer's conversation.
    await hit.click()
    await page.getByRole('heading', { name: CUSTOMER, level: 2, exact: true }).waitFor()
    assert.equal(await page.getByText(customerId).count(), 0, 'no customer id shown')
    assert.deepEqual(pageProblems, [])
  })
})
