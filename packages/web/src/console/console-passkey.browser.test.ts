/**
 * Staff passkeys in the agent console, in Chromium with its virtual authenticator (a platform authenticator that
 * verifies the user and holds discoverable credentials): an agent signed in with a token adds a passkey, signs out and
 * signs in with it (no token, no name typed); a prompt refused and another bank's ID end with a message and no session.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { createTestBank, type TestBank, type TestServer } from '@strongroom/server/testing'
import type { Browser, CDPSession, Page } from 'playwright-core'
import {
  addPlatformAuthenticator,
  assertAccessible,
  consoleLive,
  outputDir,
  signInToConsole,
  startBankPages,
  watchPage,
  webAuthnOrigin,
  withoutChromium,
} from '../browser-testing.ts'

describe('staff passkeys in the agent console', { skip: withoutChromium }, () => {
  let server: TestServer
  let origin: string
  let bank: TestBank
  let otherBank: TestBank
  let browser: Browser
  let page: Page
  let cdp: CDPSession
  let authenticatorId: string
  const pageProblems: string[] = []

  const consoleOf = (tenantId: string) => `${origin}/console/?tenant=${tenantId}`

  before(async () => {
    const local = await webAuthnOrigin()
    origin = local.origin
    ;({ server, bank, browser } = await startBankPages(undefined, local.overrides))
    otherBank = await createTestBank(server, 'Other Bank')
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    page = await context.newPage()
    // The refused passkey's 401 is expected, and the used invitation's.
    watchPage(
      page,
      pageProblems,
      (status, pathname) =>
        status === 401 &&
        (pathname === '/v1/staff/passkey/sign-in' || pathname === '/v1/staff/invitation/passkey/options'),
    )
    ;({ cdp, authenticatorId } = await addPlatformAuthenticator(context, page))
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
  })

  test('signed in with a token, the agent adds a passkey made by this device, then signs out', async () => {
    await signInToConsole(page, origin, bank.agentToken, { tenantId: bank.tenantId })
    await page.getByRole('button', { name: 'Add a passkey' }).click()
    await page.getByRole('status').getByText('Passkey added: next time, sign in with it.').waitFor()
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId })
    assert.equal(credentials.length, 1)
    assert.equal(credentials[0]?.isResidentCredential, true, 'a discoverable credential: no name to type')
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByLabel('Staff token').waitFor()
  })

  test('the agent signs in with the passkey alone: the bank ID comes from the console link', async () => {
    await page.goto(consoleOf(bank.tenantId))
    assert.equal(await page.getByLabel('Bank ID').inputValue(), bank.tenantId)
    await assertAccessible(page, 'passkey sign-in')
    await page.screenshot({ path: path.join(outputDir, 'console-sign-in-passkey.png') })
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click()
    await page.getByRole('heading', { name: 'Inbox' }).waitFor()
    await consoleLive(page).waitFor()
    assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0, 'nothing kept in storage')
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByLabel('Staff token').waitFor()
  })

  test('another bank’s ID: the server refuses the passkey, and no session opens', async () => {
    await page.goto(consoleOf(otherBank.tenantId))
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click()
    await page
      .getByRole('alert')
      .getByText('The server refused this passkey: it is not a staff passkey of this bank.')
      .waitFor()
    assert.equal(await page.getByRole('heading', { name: 'Inbox' }).count(), 0)
    await assertAccessible(page, 'passkey refused')
  })

  test('a passkey prompt that ends without the user verified shows why, and no session opens', async () => {
    await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false })
    try {
      await page.goto(consoleOf(bank.tenantId))
      await page.getByRole('button', { name: 'Sign in with a passkey' }).click()
      await page.getByRole('alert').getByText('No passkey was used', { exact: false }).waitFor()
      assert.equal(await page.getByRole('heading', { name: 'Inbox' }).count(), 0)
      // Offered again once the prompt has ended (waited for: it may come a moment after the message).
      await page.getByRole('button', { name: 'Sign in with a passkey', disabled: false }).waitFor()
    } finally {
      await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: true })
    }
  })

  test('a bank ID that is not one is refused before any prompt', async () => {
    await page.goto(`${origin}/console/`)
    await page.getByLabel('Bank ID').fill('Demo Bank')
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click()
    await page.getByRole('alert').getByText('That is not a bank ID (it starts ten_).').waitFor()
  })

  test('a new member opens an invitation link, makes a passkey and is signed in; the used link then says why not', async () => {
    const { staffId } = await bank.staffToken('agent', 'nia')
    const response = await fetch(`${origin}/v1/staff/${staffId}/invitations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bank.adminToken}`, 'content-type': 'application/json' },
      body: '{}',
    })
    const { url } = (await response.json()) as { url: string }
    // Opened afresh, as from a message: on the console's own address only the fragment would change, not the page.
    const open = async () => {
      await page.goto('about:blank')
      await page.goto(url)
    }
    await open()
    await page.getByRole('heading', { name: 'Set up your passkey' }).waitFor()
    assert.equal(new URL(page.url()).hash, '', 'the invitation is taken out of the address')
    await assertAccessible(page, 'invitation')
    await page.getByRole('button', { name: 'Create a passkey and sign in' }).click()
    await page.getByRole('heading', { name: 'Inbox' }).waitFor()
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId })
    assert.equal(credentials.length, 2, 'the agent’s passkey and the new member’s')
    await page.getByRole('button', { name: 'Sign out' }).click()
    await open()
    await page.getByRole('button', { name: 'Create a passkey and sign in' }).click()
    await page
      .getByRole('alert')
      .getByText('This invitation link is invalid, used or expired: ask your administrator for a new one.')
      .waitFor()
    assert.equal(await page.getByRole('heading', { name: 'Inbox' }).count(), 0)
  })

  test('the pages ran under their policy with no violation or script error', () => {
    assert.deepEqual(pageProblems, [])
  })
})
