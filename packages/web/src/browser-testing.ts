/**
 * What the browser tests share: Debian's Chromium (never a downloaded browser), where screenshots go, a real server
 * serving a fresh build of the pages (with a bank and Chromium started), a watch on a page for script errors, policy
 * violations and failed requests, signing in to the console, waiting for what a page cannot show, Chromium's virtual
 * passkey authenticator, and the accessibility check.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import AxeBuilder from '@axe-core/playwright'
import { StaffClient, StaffToken } from '@strongroom/sdk'
import {
  type Config,
  createTestBank,
  skipUnlessPresent,
  startTestServer,
  type TestBank,
  type TestServer,
} from '@strongroom/server/testing'
import { type Browser, type BrowserContext, type CDPSession, chromium, type Page } from 'playwright-core'
import { buildWeb } from '../build.ts'

export const CHROMIUM = process.env.STRONGROOM_CHROMIUM ?? '/usr/bin/chromium'
/** For `describe`'s skip option: false when Chromium is there, else why the browser tests cannot run (under CI=true, a failure). */
export const withoutChromium = skipUnlessPresent(
  existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install -y chromium; .ci/run does it)`,
)
export const outputDir = path.join(import.meta.dirname, '..', 'test-output')
/** Generous: a loaded CI machine shares two cores between this browser, the server and other test files. */
export const WAIT = 60_000

/** A free TCP port: WebAuthn needs the origin (with its port) known before the server starts. */
export async function freePort(): Promise<number> {
  const probe = net.createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as net.AddressInfo
  await new Promise((resolve) => probe.close(resolve))
  return port
}

/**
 * A localhost origin on a free port, and the server settings that make it the WebAuthn relying party: WebAuthn needs
 * the origin (with its port) known before the server starts.
 */
export async function webAuthnOrigin(): Promise<{ origin: string; overrides: Partial<Config> }> {
  const port = await freePort()
  const origin = `http://localhost:${port}`
  return { origin, overrides: { port, publicUrl: origin, rpId: 'localhost', rpOrigins: origin } }
}

/**
 * Builds the pages into a temporary directory and starts a real server (dev mode, so the simulator is there) that
 * serves them; stopping it removes the build. Makes the screenshot directory too.
 */
async function startPagesServer(
  overrides: Partial<Config> = {},
  /** `archiveSink`: what the archive member decrypts, for tests that count it. */
  options: Parameters<typeof startTestServer>[2] = {},
): Promise<TestServer> {
  mkdirSync(outputDir, { recursive: true })
  const webDir = mkdtempSync(path.join(os.tmpdir(), 'strongroom-web-build-'))
  const removeBuild = () => rmSync(webDir, { recursive: true, force: true })
  try {
    await buildWeb({ outDir: webDir, quiet: true })
    const server = await startTestServer({ ...overrides, webDir }, undefined, options)
    return {
      ...server,
      stop: async () => {
        await server.stop()
        removeBuild()
      },
    }
  } catch (error) {
    removeBuild()
    throw error
  }
}

export interface BankPages {
  server: TestServer
  bank: TestBank
  /** The bank's agent and admin through the API. */
  agentApi: StaffClient
  adminApi: StaffClient
  browser: Browser
}

/**
 * What most browser tests start from: the pages server (see startPagesServer), a bank on it (createTestBank's name
 * when none is given), and Chromium. The caller closes the browser and stops the server.
 */
export async function startBankPages(
  bankName?: string,
  overrides: Partial<Config> = {},
  options: Parameters<typeof startPagesServer>[1] = {},
): Promise<BankPages> {
  const server = await startPagesServer(overrides, options)
  try {
    const bank = await createTestBank(server, bankName)
    const staff = (token: string) => new StaffClient({ baseUrl: server.url, credentials: new StaffToken(token) })
    const browser = await chromium.launch({ executablePath: CHROMIUM })
    return { server, bank, agentApi: staff(bank.agentToken), adminApi: staff(bank.adminToken), browser }
  } catch (error) {
    await server.stop()
    throw error
  }
}

/**
 * Gives the page a phone's or laptop's built-in authenticator (Chromium's virtual one): discoverable credentials, the
 * user verified, no prompt. Returns the DevTools session and the authenticator's id, to read or change it.
 */
export async function addPlatformAuthenticator(
  context: BrowserContext,
  page: Page,
): Promise<{ cdp: CDPSession; authenticatorId: string }> {
  const cdp = await context.newCDPSession(page)
  await cdp.send('WebAuthn.enable')
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  })
  return { cdp, authenticatorId }
}

/**
 * A staff member signs in to the console with a token as a person does (typed into its field, the button pressed),
 * and it is live: signed in, its stream open, so that what the test does next is heard. `tenantId`: the bank named in
 * the console's address, as a link from the bank gives it.
 */
export async function signInToConsole(
  page: Page,
  origin: string,
  token: string,
  options: { tenantId?: string } = {},
): Promise<void> {
  const tenant = options.tenantId === undefined ? '' : `?tenant=${options.tenantId}`
  await page.goto(`${origin}/console/${tenant}`)
  await page.getByLabel('Staff token').fill(token)
  await page.getByRole('button', { name: 'Sign in', exact: true }).click()
  // Whatever the page's default: a loaded machine may take long to list the conversations and open the stream.
  await consoleLive(page)
    .waitFor({ timeout: WAIT })
    .catch(async (error: Error) => {
      // What the page showed instead, so that a failure says where the sign-in stopped.
      const shown = async (locator: ReturnType<Page['locator']>) =>
        (await locator.allTextContents().catch(() => [])).join(' | ') || 'nothing'
      const banner = await shown(page.getByRole('banner'))
      const alerts = await shown(page.locator('[role=alert], .alert, [role=status]'))
      throw new Error(`${error.message}\nthe top bar showed: ${banner}\nalerts and statuses: ${alerts}`)
    })
}

/** The console's top bar saying its stream is open (not "Reconnecting…", nor "Delivered" elsewhere on the page). */
export const consoleLive = (page: Page) => page.getByRole('banner').getByText('Live', { exact: true })

/** Polls until `read` gives something `done` accepts, up to the generous wait. */
export async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + WAIT
  for (;;) {
    const value = await read()
    if (done(value)) return value
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

/**
 * Collects into `problems` every script error, CSP violation and failed request of the page, except the failed
 * requests `expected` accepts (and the favicon, which the pages do not have), so that a test can fail on them.
 */
export function watchPage(
  page: Page,
  problems: string[],
  expected: (status: number, pathname: string) => boolean = () => false,
): void {
  page.setDefaultTimeout(WAIT)
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      problems.push(message.text())
    }
  })
  page.on('pageerror', (error) => problems.push(error.message))
  page.on('response', (response) => {
    const { pathname } = new URL(response.url())
    if (response.status() >= 400 && pathname !== '/favicon.ico' && !expected(response.status(), pathname)) {
      problems.push(`${response.status()} ${pathname}`)
    }
  })
}

/**
 * axe-core on the page as it is: no serious or critical violation. Its color-contrast rule (WCAG AA, 4.5:1 for text)
 * must have run and found text to check: the design system's colours are held to it on every screen.
 */
export async function assertAccessible(page: Page, screen: string): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze()
  assert.ok(
    results.passes.some((rule) => rule.id === 'color-contrast') ||
      results.violations.some((rule) => rule.id === 'color-contrast'),
    `${screen}: axe's color-contrast rule checked no text`,
  )
  const serious = results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`)
  assert.deepEqual(serious, [], `${screen}: accessibility violations`)
}
