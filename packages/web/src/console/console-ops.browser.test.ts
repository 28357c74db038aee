/**
 * The console's operational screens in a real browser (Debian's Chromium, driven by playwright-core) against a real
 * server: payment confirmation with its live status and verified receipt, the customer's risk badges and devices with
 * revoke, a supervisor's transfer, the compliance screen (verification, search, export with progress), and a
 * 1,000-conversation inbox. Keyboard-only use of the consent form; axe on every screen. Screenshots go to
 * packages/web/test-output/.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import {
  type ConsentRequest,
  type DeviceClient,
  enrolDevice,
  StaffClient,
  StaffToken,
  type StrongroomError,
  verifyConsentReceipt,
} from '@strongroom/sdk'
import {
  archiveRecords,
  createConversationIn,
  type TestBank,
  type TestServer,
  verificationKeys,
  verifyBundle,
} from '@strongroom/server/testing'
import { type TOTP, URI } from 'otpauth'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import WebSocket from 'ws'
import {
  assertAccessible,
  outputDir,
  signInToConsole,
  withoutChromium as skip,
  startBankPages,
  watchPage,
} from '../browser-testing.ts'

const app = { appId: 'com.bank.app', appVersion: '3.2.0' }
const clean = { rooted: false, debugger: false, hooking: false, emulator: false }
const GRACE_PHONE = '+447700900123'
const ARCHIVED = 1200

describe('the console’s operational screens in Chromium', { skip }, () => {
  let server: TestServer
  let bank: TestBank
  let browser: Browser
  let agentApi: StaffClient
  let graceId: string
  let conversationId: string
  let phone: DeviceClient
  let tablet: DeviceClient
  let agentPage: Page
  let supervisorPage: Page
  let adminApi: StaffClient
  const contexts: BrowserContext[] = []
  const pageProblems: string[] = []

  /** A page of its own (a new context: no shared memory), watched for script errors, CSP violations and failures. */
  async function newPage(width = 1280): Promise<Page> {
    const context = await browser.newContext({ viewport: { width, height: 900 }, acceptDownloads: true })
    contexts.push(context)
    const page = await context.newPage()
    watchPage(page, pageProblems)
    return page
  }

  before(async () => {
    ;({ server, bank, agentApi, adminApi, browser } = await startBankPages())
    graceId = (
      await agentApi.createCustomer({ externalRef: 'REF-GRACE', displayName: 'Grace Payer', phoneNumber: GRACE_PHONE })
    ).id
    const enrol = async (label: string) =>
      (
        await enrolDevice({
          baseUrl: server.url,
          enrolmentCode: (await agentApi.issueEnrolmentCode(graceId)).code,
          label,
          WebSocket: WebSocket as never,
        })
      ).client
    phone = await enrol('Grace’s phone')
    tablet = await enrol('Old tablet')
    await phone.attest({ app, signals: clean })
    await tablet.attest({ app, signals: { ...clean, rooted: true } })
    conversationId = (await agentApi.createConversation({ customerId: graceId, assignedStaffId: bank.agentId })).id
    await phone.sendMessage(conversationId, {
      contentType: 'text/plain',
      ciphertext: new TextEncoder().encode('I want to pay my builder'),
    })
    // The carrier says Grace's SIM changed an hour ago.
    const swapped = await fetch(`${server.url}/dev/camara/sim-swaps/${encodeURIComponent(GRACE_PHONE)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ swappedAt: new Date(Date.now() - 3_600_000).toISOString() }),
    })
    assert.equal(swapped.status, 204)
    agentPage = await newPage()
  })

  after(async () => {
    for (const context of contexts) await context.close().catch(() => undefined)
    await browser?.close()
    await server?.stop()
  })

  test('the agent sees the customer’s risk badges and devices beside the conversation', async () => {
    // Issue 15: an authenticator app added within the bank's cooling-off period is a risk the agent sees.
    const policy = await fetch(`${server.url}/v1/policies/step-up`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${bank.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ rules: [], factorCoolingOffHours: 24 }),
    })
    assert.equal(policy.status, 200)
    const authenticator = URI.parse((await phone.enrolTotp()).otpauthUri) as TOTP
    await phone.confirmTotp(authenticator.generate())
    await signInToConsole(agentPage, server.url, bank.agentToken)
    await agentPage.getByRole('button', { name: /Grace Payer/ }).click()
    await agentPage
      .getByRole('log', { name: 'Messages with Grace Payer' })
      .getByText('I want to pay my builder')
      .waitFor()
    const risks = agentPage.getByRole('list', { name: 'Risk signals' })
    await risks.getByText('SIM swapped in the last 72 hours').waitFor()
    await risks.getByText('New device: enrolled in the last 7 days').waitFor()
    await risks.getByText('Integrity: limited (rooted-device; rooted)').waitFor()
    await risks.getByText(/^New authenticator app: cooling off until /).waitFor()
    const devices = agentPage.locator('.devices')
    await devices.getByText('Grace’s phone').waitFor()
    await devices.getByText('Integrity: passed (dev, software)').waitFor()
    await assertAccessible(agentPage, 'customer panel')
    await agentPage.screenshot({ path: path.join(outputDir, 'console-customer-panel.png') })
  })

  test('keyboard only: the agent asks for a payment, the phone approves, the console shows the verified receipt', async () => {
    const page = agentPage
    await tabTo(page, 'consent-amount')
    await page.keyboard.type('1,250.00')
    await page.getByText('The customer is asked to confirm €1,250.00.', { exact: false }).waitFor()
    await page.keyboard.press('Tab') // currency: EUR stays chosen
    await page.keyboard.press('Tab')
    await page.keyboard.type('Bob the Builder Ltd')
    await page.keyboard.press('Tab')
    await page.keyboard.type('DE89 3704 0044 0532 0130 00')
    await page.keyboard.press('Tab')
    await page.keyboard.type('Kitchen, invoice 42')
    await page.keyboard.press('Tab') // the expiry: five minutes
    await page.keyboard.press('Tab')
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Ask the customer to confirm')
    const sent = page.waitForResponse((r) => r.url().endsWith('/v1/consents') && r.request().method() === 'POST')
    await page.keyboard.press('Enter')
    const asked = (await (await sent).json()) as ConsentRequest
    assert.deepEqual(
      [asked.amount, asked.payee, asked.reference],
      [
        { value: 125000, currency: 'EUR' },
        { name: 'Bob the Builder Ltd', account: 'DE89370400440532013000' },
        'Kitchen, invoice 42',
      ],
    )
    const card = page.locator('.consent').filter({ hasText: 'Bob the Builder Ltd' })
    await card.getByRole('status').getByText('Waiting for the customer').waitFor()
    await assertAccessible(page, 'consent pending')

    const seen = await phone.getConsent(asked.id)
    const approved = await phone.approveConsent(seen)
    await card.getByRole('status').getByText('Approved').waitFor()
    await card.getByText('Signed receipt checked: the customer approved exactly this.').waitFor()
    // The technical details are there for compliance, folded away.
    assert.equal(await card.getByText('device-key').isVisible(), false)
    await card.getByText('Receipt details (for compliance)').click()
    await card.getByText('device-key').waitFor()
    await card.evaluate((element) => element.scrollIntoView({ block: 'end' }))
    await page.screenshot({ path: path.join(outputDir, 'console-consent-approved.png') })

    const download = page.waitForEvent('download')
    await card.getByRole('link', { name: 'Download receipt (JWS)' }).focus()
    await page.keyboard.press('Enter')
    const file = await (await download).path()
    const jws = readFileSync(file, 'utf8')
    assert.equal(jws, approved.receipt)
    const verified = await verifyConsentReceipt(jws, await agentApi.receiptKeys(), asked)
    assert.equal(verified.transaction.amount.value, 125000)
    await assertAccessible(page, 'consent approved')
  })

  test('a declined request shows as declined, with no receipt', async () => {
    const page = agentPage
    await page.getByLabel('Amount').fill('80')
    await page.getByLabel('Currency').selectOption('GBP')
    await page.getByLabel('Payee name').fill('Unknown Trader')
    await page.getByLabel('Payee account (IBAN or account number)').fill('GB33BUKB20201555555555')
    await page.getByLabel('Reference').fill('Urgent transfer')
    const sent = page.waitForResponse((r) => r.url().endsWith('/v1/consents') && r.request().method() === 'POST')
    await page.getByRole('button', { name: 'Ask the customer to confirm' }).click()
    const asked = (await (await sent).json()) as ConsentRequest
    assert.deepEqual(asked.amount, { value: 8000, currency: 'GBP' })
    await phone.declineConsent(asked.id, 'I did not ask for this')
    const card = page.locator('.consent').filter({ hasText: 'Unknown Trader' })
    await card.getByRole('status').getByText('Declined').waitFor()
    assert.equal(await card.getByText('Signed receipt').count(), 0)
    await card.evaluate((element) => element.scrollIntoView({ block: 'end' }))
    await page.screenshot({ path: path.join(outputDir, 'console-consent-declined.png') })
  })

  test('revoking a device asks first; once revoked, that device’s requests fail', async () => {
    const page = agentPage
    const row = page.locator('.device').filter({ hasText: 'Old tablet' })
    await row.getByRole('button', { name: 'Revoke Old tablet' }).click()
    const confirm = row.getByRole('group')
    await confirm.getByText('This cannot be undone').waitFor()
    await assertAccessible(page, 'revoke confirmation')
    await page.screenshot({ path: path.join(outputDir, 'console-revoke-confirm.png') })
    // Cancel changes nothing.
    await page.keyboard.press('Enter') // the focus starts on Cancel
    await row.getByRole('button', { name: 'Revoke Old tablet' }).waitFor()
    assert.equal((await tablet.listMyDevices()).length, 2)

    await row.getByRole('button', { name: 'Revoke Old tablet' }).click()
    await row.getByLabel('Reason (kept in the audit log)').fill('Customer reports it stolen')
    await row.getByRole('button', { name: 'Revoke device' }).click()
    await page.getByText('Old tablet was revoked.').waitFor()
    await row.getByText('revoked', { exact: true }).waitFor()
    await assert.rejects(tablet.listMyDevices(), (e: StrongroomError) => e.status === 401)
    await assert.rejects(tablet.getConsent('con_0000000000000000000000'), (e: StrongroomError) => e.status === 401)
    assert.equal((await phone.listMyDevices()).find((d) => d.label === 'Old tablet')?.status, 'revoked')
  })

  test('at 360 px wide the tools follow the conversation, nothing scrolls sideways', async () => {
    const page = agentPage
    await page.setViewportSize({ width: 360, height: 740 })
    await page.getByRole('heading', { name: 'Customer', exact: true }).evaluate((h) => h.scrollIntoView())
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 360))
    await assertAccessible(page, 'tools at 360 px')
    await page.screenshot({ path: path.join(outputDir, 'console-tools-360.png') })
    await page.setViewportSize({ width: 1280, height: 900 })
  })

  test('a supervisor finds the conversation in the whole team’s and transfers it: it leaves the agent’s inbox live and reaches the other agent', async () => {
    const supervisor = await bank.staffToken('supervisor', 'Sam Supervisor')
    const bea = await bank.staffToken('agent', 'Bea Agent')
    // Rex's groups give him no role: the bank's identity provider (SCIM) left him in none its role mapping names.
    const rex = await bank.staffToken('agent', 'Rex Roleless')
    await server.ctx.db.updateTable('staff').set({ roleless_at: new Date() }).where('id', '=', rex.staffId).execute()
    supervisorPage = await newPage()
    const page = supervisorPage
    await signInToConsole(page, server.url, supervisor.token)
    // Not in the conversation: it shows once the supervisor asks for the whole team's, and goes with the tick.
    const row = page.getByRole('button', { name: /Grace Payer/ })
    const team = page.getByRole('checkbox', { name: 'Whole team' })
    await team.check()
    await row.waitFor()
    // Not the supervisor's to read: nothing counts as unread for them.
    assert.doesNotMatch((await row.textContent()) ?? '', /unread/)
    await team.uncheck()
    await row.waitFor({ state: 'detached' })
    await team.check()
    await row.click()
    // The payment confirmations the agent asked for are there too, with their verified receipt.
    const earlier = page.locator('.consent').filter({ hasText: 'Bob the Builder Ltd' })
    await earlier.getByRole('status').getByText('Approved').waitFor()
    await earlier.getByText('Signed receipt checked: the customer approved exactly this.').waitFor()
    const panel = page.locator('section').filter({ has: page.getByRole('heading', { name: 'Assignment' }) })
    await panel.getByText('Assigned to agent').waitFor()
    // Rex is not offered: he could not work it.
    const giveTo = page.getByLabel('Give to')
    await giveTo.locator('option', { hasText: 'Bea Agent' }).waitFor({ state: 'attached' })
    const offered = await giveTo.locator('option').allTextContents()
    assert.ok(!offered.some((o) => o.includes('Rex Roleless')), offered.join(' | '))
    // Bea has no console open: the picker says she is offline.
    await page.getByLabel('Give to').selectOption({ label: 'Bea Agent (agent) · Offline' })
    await assertAccessible(page, 'assignment')
    await panel.getByRole('button', { name: 'Transfer' }).click()
    await panel.getByText('Transferred to Bea Agent.').waitFor()
    await panel.getByText('Assigned to Bea Agent').waitFor()
    await page.screenshot({ path: path.join(outputDir, 'console-assignment.png') })
    // The agent who had it: gone from the inbox, live.
    await agentPage.getByRole('button', { name: /Grace Payer/ }).waitFor({ state: 'detached' })
    const beaApi = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bea.token) })
    assert.equal((await beaApi.getConversation(conversationId)).assignedStaffId, bea.staffId)
  })

  test('the supervisor’s picker follows the staff live: a colleague added is offered, one deactivated no longer', async () => {
    const offered = (name: string) => supervisorPage.getByLabel('Give to').locator('option', { hasText: name })
    assert.equal(await offered('Nia New').count(), 0)
    const nia = await adminApi.request<{ id: string }>('POST', '/v1/staff', { name: 'Nia New', role: 'agent' })
    await offered('Nia New (agent) · Offline').waitFor({ state: 'attached' })
    await adminApi.request('POST', `/v1/staff/${nia.id}/deactivate`)
    await offered('Nia New').waitFor({ state: 'detached' })
    await adminApi.request('POST', `/v1/staff/${nia.id}/activate`)
    await offered('Nia New').waitFor({ state: 'attached' })
  })

  test('a compliance officer sees the chain verified, searches the archive and exports a case with progress', async () => {
    const page = await newPage()
    const officer = await bank.staffToken('compliance', 'Olive Officer')
    const inputs = Array.from({ length: ARCHIVED }, (_, i) => ({
      tenantId: bank.tenantId,
      recordClass: 'public-message' as const,
      sourceRef: `browser-test:${i}`,
      conversationId: null,
      conversationSeq: null,
      customerId: graceId,
      occurredAt: new Date(Date.now() - (ARCHIVED - i) * 60_000),
      content: {
        sender: { kind: 'customer', id: graceId },
        text: i === 0 ? 'Please send me a replacement card' : `message ${i} from Grace`,
      },
    }))
    assert.equal(await archiveRecords(server.ctx, inputs), ARCHIVED)
    await server.flushArchive()
    // Grace's case holds these and the evidence the archive keeps of her (her devices' enrolment, say).
    const { caseSize } = await server.ctx.db
      .selectFrom('archive_records')
      .select(({ fn }) => fn.countAll<number>().as('caseSize'))
      .where('tenant_id', '=', bank.tenantId)
      .where('customer_id', '=', graceId)
      .where('seq', 'is not', null)
      .executeTakeFirstOrThrow()
    const records = Number(caseSize)
    assert.ok(records >= ARCHIVED)

    await signInToConsole(page, server.url, officer.token)
    const main = page.getByRole('main')
    await main.getByText('Verification OK:').waitFor()
    await page.getByLabel('Customer id').fill(graceId)
    await page.getByLabel('Text').fill('replacement card')
    await page.getByRole('button', { name: 'Search' }).click()
    const table = page.getByRole('table', { name: 'Archive records found' })
    await table.getByText('Please send me a replacement card').waitFor()
    // The officer reads who the customer is, with the id the evidence names her by.
    await table
      .getByRole('cell', { name: `Grace Payer ${graceId}` })
      .first()
      .waitFor()
    await assertAccessible(page, 'compliance search')
    await page.screenshot({ path: path.join(outputDir, 'console-compliance.png') })

    // What the progress bar showed, as it changed: the export streams and the page follows it.
    await page.evaluate(() => {
      const seen: string[] = []
      ;(window as unknown as { progressSeen: string[] }).progressSeen = seen
      new MutationObserver(() => {
        const bar = document.getElementById('export-progress')
        if (bar) seen.push(`${bar.getAttribute('value')}/${bar.getAttribute('max')}`)
      }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true })
    })
    await page.getByLabel('Text').fill('')
    const download = page.waitForEvent('download')
    await page.getByRole('button', { name: 'Export as a signed case' }).click()
    await page.getByText(`Signed bundle ready: ${records} of ${records} records`).waitFor()
    const progress = await page.evaluate(() => (window as unknown as { progressSeen: string[] }).progressSeen)
    console.log(`export progress as shown: ${[...new Set(progress)].join(', ')}`)
    assert.ok(
      progress.some((p) => p.endsWith(`/${records}`)),
      'the progress bar showed the case’s size while it was built',
    )
    await assertAccessible(page, 'compliance export')
    await page.screenshot({ path: path.join(outputDir, 'console-compliance-export.png') })
    await page.getByRole('link', { name: /Download case-/ }).click()
    const bundle = readFileSync(await (await download).path(), 'utf8')
    assert.deepEqual(verifyBundle(bundle, await verificationKeys(server.ctx.db, 'archive-checkpoint')), {
      ok: true,
      records,
    })
  })

  test('1,000 conversations: the inbox renders only what is in view and moves by keyboard to the last', async () => {
    const busy = await bank.staffToken('agent', 'Busy Agent')
    // The inbox has a line per customer: 1,000 senders not yet linked to a customer make 1,000 lines.
    await server.ctx.db.transaction().execute(async (trx) => {
      for (let i = 0; i < 1000; i++) {
        await createConversationIn(trx, bank.tenantId, { customerId: null, assignedStaffId: busy.staffId })
      }
    })
    const page = await newPage()
    await page.goto(`${server.url}/console/`)
    await page.getByLabel('Staff token').fill(busy.token)
    await page.evaluate(() => {
      const w = window as unknown as { longest: number }
      w.longest = 0
      new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) w.longest = Math.max(w.longest, entry.duration)
      }).observe({ type: 'longtask', buffered: false })
    })
    const started = Date.now()
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
    await page.locator('.inbox li[aria-posinset="1"]').waitFor()
    const shown = Date.now() - started
    const rendered = await page.locator('.inbox li').count()
    const setSize = await page.locator('.inbox li').first().getAttribute('aria-setsize')
    const longest = await page.evaluate(() => (window as unknown as { longest: number }).longest)
    assert.equal(setSize, '1000')
    assert.ok(rendered < 100, `only the rows in view are in the page (${rendered})`)

    await page.locator('.inbox li[aria-posinset="1"] button').focus()
    const scrolled = Date.now()
    await page.keyboard.press('End')
    await page.locator('.inbox li[aria-posinset="1000"] button:focus').waitFor()
    const toEnd = Date.now() - scrolled
    await page.keyboard.press('ArrowUp')
    await page.locator('.inbox li[aria-posinset="999"] button:focus').waitFor()
    await page.keyboard.press('Home')
    await page.locator('.inbox li[aria-posinset="1"] button:focus').waitFor()
    console.log(
      `inbox of 1,000 conversations: shown ${shown} ms after sign-in (loading included), ` +
        `longest main-thread task ${Math.round(longest)} ms, ${rendered} rows in the page, End key to the last row ${toEnd} ms`,
    )
    await assertAccessible(page, 'inbox of 1,000')
    await page.screenshot({ path: path.join(outputDir, 'console-inbox-1000.png') })
  })

  test('the pages ran under their policy with no violation, script error or failed request', () => {
    assert.deepEqual(pageProblems, [])
  })
})

/** Presses Tab until the element with this id has the focus: the way a keyboard user gets there. */
async function tabTo(page: Page, id: string): Promise<void> {
  for (let presses = 0; presses < 80; presses++) {
    if (await page.evaluate((wanted) => document.activeElement?.id === wanted, id)) return
    await page.keyboard.press('Tab')
  }
  assert.fail(`Tab never reached #${id}`)
}
