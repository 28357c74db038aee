/**
 * Issue #22: an agent's secure history follows the bank's side. The agent signs in on a new browser (no MLS state of
 * the conversation) and reads its earlier secure messages; a conversation handed over to another agent is read by them
 * from the start, and they answer it end to end. The earlier messages come from the bank's archive, sealed to a key
 * each browser made for the request. Each test counts: every message is readable by every current member, and the
 * archive holds as many as were sent.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { enrolDevice, StaffClient, StaffToken } from '@strongroom/sdk'
import {
  encryptedStore,
  generateStoreKey,
  MemoryStore,
  nodeCryptoProvider,
  type SecureEvent,
  SecureMessaging,
} from '@strongroom/sdk/mls-node'
import type { TestBank, TestServer } from '@strongroom/server/testing'
import type { Browser, Page } from 'playwright-core'
import {
  eventually,
  outputDir,
  signInToConsole,
  withoutChromium as skip,
  startBankPages,
  watchPage,
} from '../browser-testing.ts'

describe('secure history on the bank’s side, in Chromium', { skip }, () => {
  let server: TestServer
  let bank: TestBank
  let agentApi: StaffClient
  let browser: Browser
  let phone: SecureMessaging
  const phoneRead: SecureEvent[] = []
  let conversationId: string
  const problems: string[] = []
  /** Every secure message sent, by anyone. */
  const sent: string[] = []

  const log = (page: Page) => page.getByRole('log', { name: 'Messages with Ada Customer' })
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(outputDir, `${name}.png`) })

  /** A new browser (its own context: no IndexedDB, no MLS state) where a staff member signs in with a token. */
  async function signedIn(token: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    const page = await context.newPage()
    // A send that meets another member's commit first gets 409 (epoch conflict) and goes again on top of it.
    watchPage(
      page,
      problems,
      (status, pathname) => status === 409 && /^\/v1\/conversations\/cnv_[\w-]+\/messages$/.test(pathname),
    )
    await signInToConsole(page, server.url, token)
    return page
  }

  async function phoneSends(text: string): Promise<void> {
    await phone.send(conversationId, text)
    sent.push(text)
  }

  async function agentReplies(page: Page, text: string): Promise<void> {
    await page.getByLabel('Reply').fill(text)
    await page.getByRole('button', { name: 'Send', exact: true }).click()
    await log(page).getByText(text).waitFor()
    sent.push(text)
  }

  const archived = async () =>
    Number(
      (
        await server.ctx.db
          .selectFrom('archive_records')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('conversation_id', '=', conversationId)
          .where('record_class', '=', 'secure-message')
          .executeTakeFirstOrThrow()
      ).n,
    )

  /** The page shows every message sent, none as a placeholder; the phone read the bank's; the archive holds them all. */
  async function everyoneReadsEverything(pages: Page[], fromBank: string[]): Promise<void> {
    for (const page of pages) {
      for (const text of sent) await log(page).getByText(text, { exact: true }).waitFor()
      assert.deepEqual(
        await log(page).locator('.placeholder').allTextContents(),
        [],
        'no message the agent cannot read',
      )
    }
    await eventually(
      async () => {
        await phone.sync(conversationId)
        return phoneRead.flatMap((e) => (e.kind === 'message' ? [e.text] : []))
      },
      (texts) => fromBank.every((text) => texts.includes(text)),
      'the phone to read what the bank said',
    )
    assert.equal(await eventually(archived, (n) => n >= sent.length, 'the archive'), sent.length)
  }

  before(async () => {
    ;({ server, bank, agentApi, browser } = await startBankPages())
    const enrolled = await enrolDevice({
      baseUrl: server.url,
      enrolmentCode: await bank.enrolmentCode(),
      label: 'Phone',
    })
    phone = await SecureMessaging.open(enrolled.client, {
      provider: nodeCryptoProvider,
      store: encryptedStore(new MemoryStore(), await generateStoreKey()),
      // Every event, those read while catching up before a send included.
      onEvent: (event) => {
        phoneRead.push(event)
      },
    })
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
  })

  test('the agent on a new browser reads the earlier secure messages, and writes from both browsers', async () => {
    // The agent's first browser makes its MLS identity at sign-in; the phone makes the group with it and the archive.
    const first = await signedIn(bank.agentToken)
    conversationId = (await agentApi.createConversation({ customerId: bank.customerId, assignedStaffId: bank.agentId }))
      .id
    await phone.createGroup(conversationId, [
      { kind: 'staff', id: bank.agentId },
      { kind: 'archive', id: 'archive' },
    ])
    await phoneSends('My new card has not arrived.')
    await first.getByRole('button', { name: /Ada Customer/ }).click()
    await log(first).getByText('My new card has not arrived.').waitFor()
    await agentReplies(first, 'It was posted on Monday.')
    await phoneSends('Thank you, I will wait.')
    await everyoneReadsEverything([first], ['It was posted on Monday.'])

    // The same agent, another browser: MLS cannot decrypt what came before it, the archive can, for this agent.
    const second = await signedIn(bank.agentToken)
    await second.getByRole('button', { name: /Ada Customer/ }).click()
    await everyoneReadsEverything([second], ['It was posted on Monday.'])
    await shot(second, 'console-history-new-browser')
    // The agent answers from either browser: each goes on where the other left, nothing lost on either.
    await agentReplies(second, 'Answering from my other machine.')
    await agentReplies(first, 'And back on the first one.')
    await phoneSends('Both arrived.')
    const fromBank = ['It was posted on Monday.', 'Answering from my other machine.', 'And back on the first one.']
    await everyoneReadsEverything([first, second], fromBank)
    // Two leaves of the same agent side by side: neither browser replaced the other.
    const agentLeaves = async () => {
      await phone.sync(conversationId)
      return (await phone.members(conversationId)).filter((m) => m.kind === 'staff' && m.id === bank.agentId)
    }
    const both = await agentLeaves()
    assert.equal(new Set(both.map((m) => m.instance)).size, 2, 'one leaf per browser')
    assert.ok(!phoneRead.some((e) => e.kind === 'members-changed' && e.rejoined.length > 0), 'nobody replaced')

    // The second machine is lost: its leaf is removed; the first browser, the phone and the archive read on.
    await second.context().close()
    // The leaf added last for the agent is the second browser's (the archive added it when it asked).
    const lost = phoneRead
      .flatMap((e) => (e.kind === 'members-changed' ? e.added : []))
      .filter((m) => m.kind === 'staff' && m.id === bank.agentId)
      .at(-1)
    assert.ok(lost?.instance)
    await phone.removeMembers(conversationId, [{ kind: 'staff', id: bank.agentId, instance: lost.instance }])
    assert.equal((await agentLeaves()).length, 1)
    await phoneSends('Is the lost laptop a problem?')
    await agentReplies(first, 'No: it can read nothing from now on.')
    await everyoneReadsEverything([first], [...fromBank, 'No: it can read nothing from now on.'])
    await first.context().close()
  })

  test('handed over to another agent: they read the history and answer end to end', async () => {
    const supervisor = await bank.staffToken('supervisor')
    const colleague = await bank.staffToken('agent', 'Colleague')
    const page = await signedIn(colleague.token)
    const boss = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(supervisor.token) })
    await boss.request('PUT', `/v1/conversations/${conversationId}/assignment`, {
      staffId: colleague.staffId,
      mode: 'transfer',
    })
    await page.getByRole('button', { name: /Ada Customer/ }).click()
    await everyoneReadsEverything([page], [])
    // The customer writes on; the new agent is added to the group (the archive adds a member of the conversation).
    await phoneSends('Could you check the address?')
    await log(page).getByText('Could you check the address?').waitFor()
    await eventually(
      async () => {
        await phone.sync(conversationId)
        return (await phone.members(conversationId)).some((m) => m.kind === 'staff' && m.id === colleague.staffId)
      },
      Boolean,
      'the new agent in the group',
    )
    await agentReplies(page, 'It is 1 High Street, as on file.')
    await everyoneReadsEverything([page], ['It is 1 High Street, as on file.'])
    // The agent it was taken from has no leaf left: the archive took it out at the hand-over.
    await eventually(
      async () => {
        await phone.sync(conversationId)
        return (await phone.members(conversationId)).filter((m) => m.kind === 'staff').map((m) => m.id)
      },
      (staff) => staff.length === 1 && staff[0] === colleague.staffId,
      'only the new agent’s leaf',
    )
    await shot(page, 'console-history-handed-over')
  })

  test('the pages ran with no script error, policy violation or failed request', () => {
    assert.deepEqual(problems, [])
  })
})
