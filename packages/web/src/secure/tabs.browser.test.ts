/**
 * Issue #22: no secure message is lost when the customer's browser has the chat open in several tabs. The loss this
 * guards: after the pivot and one exchanged message, the customer opened the older link in a second tab and wrote
 * from it; the next message from the first tab reached the agent as "A message that could not be decrypted" and the
 * archive could not read it either, while the customer's page showed it as sent. Every test here counts: every
 * message is readable by every current member, and the archive holds as many as were sent.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { enrolDevice, type StaffClient } from '@strongroom/sdk'
import {
  encryptedStore,
  generateStoreKey,
  MemoryStore,
  nodeCryptoProvider,
  type SecureEvent,
  SecureMessaging,
  type SecureStore,
} from '@strongroom/sdk/mls-node'
import { configureSimulatedSms, SimulatedPhone, type TestBank, type TestServer } from '@strongroom/server/testing'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import {
  assertAccessible,
  eventually,
  outputDir,
  withoutChromium as skip,
  startBankPages,
  watchPage,
} from '../browser-testing.ts'

const BANK_NUMBER = '+442071838750'
const PHONE = '+447700900411'

describe('the secure chat in several tabs of one browser', { skip }, () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient
  let agentSecure: SecureMessaging
  const agentRead: SecureEvent[] = []
  let agentStore: SecureStore
  const archived: { conversationId: string; text: string }[] = []
  let browser: Browser
  let context: BrowserContext
  let first: Page
  let second: Page
  const problems: string[] = []
  let customerId: string
  let publicConversationId: string
  let secureConversationId: string
  let olderLink: string
  /** Every secure message sent in the conversation, by anyone: what every member and the archive must hold. */
  const sent: string[] = []
  /** What the customer sent: what the agent reads (its own it wrote). */
  const fromCustomer: string[] = []

  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(outputDir, `${name}.png`) })
  const log = (page: Page) => page.getByRole('log', { name: 'Messages' })

  /** Sends a new pivot link on SMS (replacing a live one) and returns it as the customer's phone got it. */
  async function pivotLink(): Promise<string> {
    await agent.request('POST', `/v1/conversations/${publicConversationId}/pivot`, { replace: true })
    return (await new SimulatedPhone(server.url, PHONE).lastLink()) ?? ''
  }

  async function agentSync(): Promise<void> {
    if (!(await agentSecure.isMember(secureConversationId))) await agentSecure.acceptWelcomes()
    if (await agentSecure.isMember(secureConversationId)) await agentSecure.sync(secureConversationId)
  }
  const agentTexts = () => agentRead.flatMap((e) => (e.kind === 'message' ? [e.text] : []))
  const agentReads = (text: string) =>
    eventually(
      async () => {
        await agentSync()
        return agentTexts().includes(text)
      },
      Boolean,
      `the agent to read "${text}"`,
    )

  /** The customer writes in a tab; it shows as sent there (the composer empties) once the server accepted it. */
  async function customerWrites(page: Page, text: string): Promise<void> {
    const box = page.getByRole('textbox', { name: 'Message' })
    await box.fill(text)
    await box.press('Enter')
    await eventually(
      () => box.inputValue(),
      (value) => value === '',
      `"${text}" to be sent`,
    )
    sent.push(text)
    fromCustomer.push(text)
  }

  /** Every message sent is readable by the agent, in every open tab, and held by the archive: none twice, none lost. */
  async function everyoneReadsEverything(expected: { askedAgain: number } = { askedAgain: 0 }): Promise<void> {
    for (const text of fromCustomer) await agentReads(text)
    assert.deepEqual(
      agentRead.filter((e) => e.kind === 'unreadable'),
      [],
      'the agent could read every message',
    )
    assert.deepEqual([...agentTexts()].sort(), [...fromCustomer].sort(), 'the agent read each message once')
    for (const page of [first, second]) {
      for (const text of sent) await log(page).getByText(text, { exact: true }).waitFor()
      const placeholders = await log(page).locator('.placeholder').allTextContents()
      assert.equal(placeholders.length, expected.askedAgain, 'no tab shows an unreadable message it did not ask for')
      assert.ok(placeholders.every((p) => p.includes('this browser asked for it again')))
    }
    const archivedTexts = () => archived.filter((r) => r.conversationId === secureConversationId).map((r) => r.text)
    await eventually(
      async () => archivedTexts().length,
      (count) => count >= sent.length,
      'the archive to hold every message',
    )
    assert.deepEqual([...archivedTexts()].sort(), [...sent].sort(), 'the archive holds each message sent, once')
  }

  before(async () => {
    const started = await startBankPages(
      'Tabs Bank',
      {},
      {
        archiveSink: (record) => {
          if (record.kind === 'message') {
            archived.push({ conversationId: record.conversationId, text: new TextDecoder().decode(record.plaintext) })
          }
        },
      },
    )
    ;({ server, bank, agentApi: agent, browser } = started)
    await configureSimulatedSms(started.adminApi, { bankNumber: BANK_NUMBER, agentId: bank.agentId })
    agentStore = encryptedStore(new MemoryStore(), await generateStoreKey())
    agentSecure = await SecureMessaging.open(agent, {
      provider: nodeCryptoProvider,
      store: agentStore,
      // As the console does: what it sent can be sent again to a member that could not read it.
      keepTexts: true,
      onEvent: (event) => {
        agentRead.push(event)
      },
    })
    customerId = (
      await agent.request<{ id: string }>('POST', '/v1/customers', {
        externalRef: 'TABS-1',
        displayName: 'Tess Tabs',
        phoneNumber: PHONE,
      })
    ).id
    await new SimulatedPhone(server.url, PHONE).texts(BANK_NUMBER, 'Hi, I need help with a payment.')
    publicConversationId = (await agent.listConversations()).find((c) => c.customerId === customerId)?.id as string
    assert.ok(publicConversationId, 'the SMS opened a public conversation')

    context = await browser.newContext({ viewport: { width: 1000, height: 800 } })
    first = await context.newPage()
    second = await context.newPage()
    for (const page of [first, second]) {
      watchPage(
        page,
        problems,
        (status, pathname) =>
          (status === 409 && /\/e2e\/group$/.test(pathname)) || (status === 410 && pathname === '/v1/pivot/open'),
      )
    }
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
  })

  test('after the pivot and one exchanged message, a second tab writes, then the first: the agent and the archive read both', async () => {
    // Two links were sent (the first by DLP, say); the customer opens the newer in the first tab and steps up with the
    // texted code.
    olderLink = await pivotLink()
    const newerLink = await pivotLink()
    assert.notEqual(olderLink, newerLink)
    const statuses = await agent.request<{ links: { status: string }[] }>(
      'GET',
      `/v1/conversations/${publicConversationId}/pivot-links`,
    )
    assert.deepEqual(
      statuses.links.map((l) => l.status),
      ['sent', 'revoked'],
      'one live link per customer',
    )
    await first.goto(newerLink)
    await first.getByRole('button', { name: 'Text me a code' }).click()
    const code = await eventually(() => new SimulatedPhone(server.url, PHONE).lastCode(), Boolean, 'the SMS code')
    await first.getByLabel('6-digit code').fill(code as string)
    await first.getByRole('button', { name: 'Confirm' }).click()
    await log(first).getByText('Hi, I need help with a payment.').waitFor()
    secureConversationId = (await eventually(
      async () =>
        (
          await agent.listConversations()
        ).find((c) => c.customerId === customerId && c.members.some((m) => m.kind === 'device'))?.id,
      Boolean,
      'the secure conversation',
    )) as string
    await first.getByRole('textbox', { name: 'Message' }).waitFor({ state: 'visible' })
    await eventually(
      async () => {
        await agentSync()
        return agentSecure.isMember(secureConversationId)
      },
      Boolean,
      'the agent to join',
    )
    await agentSecure.send(secureConversationId, 'Hello Tess, how can I help?')
    sent.push('Hello Tess, how can I help?')
    await log(first).getByText('Hello Tess, how can I help?').waitFor()
    await customerWrites(first, 'A payment of mine was refused.')
    await agentReads('A payment of mine was refused.')

    // The older link, in a second tab of the same browser: the newer one replaced it, so it enrols and joins nothing;
    // the page says so and opens the chat this browser already has.
    await second.goto(olderLink)
    await second.getByRole('heading', { name: 'A newer link replaced this one' }).waitFor()
    await second.getByText('This browser is already set up for your secure chat').waitFor()
    await assertAccessible(second, 'link replaced')
    await shot(second, 'secure-link-replaced')
    await second.getByRole('link', { name: 'Open your secure chat' }).click()
    await log(second).getByText('A payment of mine was refused.').waitFor()
    await customerWrites(second, 'Writing from my other tab.')
    await agentReads('Writing from my other tab.')
    await customerWrites(first, 'And now from the first tab again.')
    await everyoneReadsEverything()
    await shot(first, 'secure-tabs-first')
    await shot(second, 'secure-tabs-second')
  })

  test('both tabs send at once: each message is sent once, and every member reads both', async () => {
    await Promise.all([
      customerWrites(first, 'At once from the first tab.'),
      customerWrites(second, 'At once from the second tab.'),
    ])
    await everyoneReadsEverything()
  })

  test('a message no tab can read (the agent’s key used twice, as a test forces) says it was asked for, then shows once sent again', async () => {
    const stale = (await agentStore.get(`mls/group/${secureConversationId}`)) as Uint8Array
    await agentSecure.send(secureConversationId, 'Your refund is on its way.')
    await agentStore.set(`mls/group/${secureConversationId}`, stale)
    await agentSecure.send(secureConversationId, 'It will arrive on Thursday.')
    sent.push('Your refund is on its way.', 'It will arrive on Thursday.')
    for (const page of [first, second]) {
      await log(page).getByText('this browser asked for it again').waitFor()
    }
    await shot(first, 'secure-tabs-asked-again')
    // The agent reads the browser's request and sends the message again, once.
    await eventually(
      async () => {
        await agentSync()
        return agentRead.filter((e) => e.kind === 'resent').length
      },
      (resent) => resent === 1,
      'the agent to send it again',
    )
    await everyoneReadsEverything({ askedAgain: 1 })
    assert.equal(agentRead.filter((e) => e.kind === 'resent').length, 1, 'sent again once, whatever the tabs asked')
  })

  test('the customer’s phone app joins beside this browser, then is revoked: only its leaf goes, the browser reads on', async () => {
    const { code } = await agent.issueEnrolmentCode(customerId)
    const enrolled = await enrolDevice({ baseUrl: server.url, enrolmentCode: code, label: 'phone app' })
    const phone = await SecureMessaging.open(enrolled.client, {
      provider: nodeCryptoProvider,
      store: encryptedStore(new MemoryStore(), await generateStoreKey()),
    })
    const phoneLeaf = (m: { kind: string; id: string }) => m.kind === 'device' && m.id === enrolled.device.id
    await agent.request('POST', `/v1/conversations/${secureConversationId}/members`, {
      kind: 'device',
      id: enrolled.device.id,
    })
    // A device the group never had asks to be added; the archive member adds it, a leaf of its own beside the browser.
    await eventually(
      async () => {
        await phone.sync(secureConversationId)
        return phone.isMember(secureConversationId)
      },
      Boolean,
      'the phone in the group',
    )
    await phone.send(secureConversationId, 'Now from my phone app.')
    sent.push('Now from my phone app.')
    fromCustomer.push('Now from my phone app.')
    await everyoneReadsEverything({ askedAgain: 1 })

    await agent.revokeDevice(enrolled.device.id, 'lost phone')
    const members = await eventually(
      async () => {
        await agentSync()
        return agentSecure.members(secureConversationId)
      },
      (now) => !now.some(phoneLeaf),
      'the phone’s leaf to go',
    )
    assert.deepEqual(
      members.map((m) => m.kind).sort(),
      ['archive', 'device', 'staff'],
      'the browser stays, beside the agent and the archive',
    )
    await agentSecure.send(secureConversationId, 'Your phone is removed; this browser stays.')
    sent.push('Your phone is removed; this browser stays.')
    await customerWrites(first, 'Thanks, I still see everything here.')
    await everyoneReadsEverything({ askedAgain: 1 })
  })

  test('the pages ran with no script error, policy violation or failed request', () => {
    assert.deepEqual(problems, [])
  })
})
