/**
 * The whole story in production mode (issue 23, item 3), in Chromium against `npm run cluster`: HAProxy terminating
 * TLS in front of three production nodes on PostgreSQL and NATS, no dev seed, no simulator. The bank is set up as the
 * README's "Production, step by step" says (the command line, then the admin API); its SMS channel is SMPP to an SMSC
 * the test plays (production allows no provider URL of a test's own, so SMPP is the public channel a test can drive
 * end to end). The customer texts a card number; the agent, who enrolled a passkey from the invitation link
 * `strongroom staff invite` printed and signed in with it (no token pasted), sees it masked and moves the customer to the secure channel; the customer opens the link in a phone-sized browser, steps up
 * with the code texted over SMPP, chats end to end encrypted as a browser device (no integrity token, the bank's
 * policy for browsers), and approves the payment with a passkey the browser makes then; the console shows the verified
 * receipt.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createHash, X509Certificate } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { StaffClient, StaffToken } from '@strongroom/sdk'
import {
  createTestDatabase,
  type RunningCluster,
  skipUnlessPresent,
  startCluster,
  startFakeCarrier,
  startFakeSmsc,
  strongroomFromSource,
  type TestDatabase,
} from '@strongroom/server/testing'
import { type Browser, type BrowserContext, type CDPSession, chromium, type Page } from 'playwright-core'
import { buildWeb } from '../build.ts'
import {
  addPlatformAuthenticator,
  CHROMIUM,
  freePort,
  outputDir,
  WAIT,
  watchPage,
  withoutChromium,
} from './browser-testing.ts'
import { askForPayment, paymentCard, replacementCardFee, writeEndToEnd } from './story-steps.ts'

const CUSTOMER_PHONE = '+447700900123'
const BANK_NUMBER = '+442071838790'
const CUSTOMER = 'Grace Texter'
const PAN = '4111 1111 1111 1111'
const SMSC_LOGIN = { systemId: 'bank01', password: 'pw12345' }

const haproxyInstalled = !spawnSync('haproxy', ['-v'], { stdio: 'ignore' }).error
const clusterMissing = skipUnlessPresent(
  !haproxyInstalled
    ? 'needs haproxy (apt-get install haproxy)'
    : !(process.env.DATABASE_URL && process.env.NATS_URL) && 'needs DATABASE_URL and NATS_URL',
)

describe('the whole story in production: HAProxy, TLS, three nodes, PostgreSQL, NATS', {
  skip: withoutChromium || clusterMissing,
}, () => {
  let database: TestDatabase
  let stateDir: string
  let webDir: string
  let cluster: RunningCluster
  let smsc: Awaited<ReturnType<typeof startFakeSmsc>>
  let carrier: Awaited<ReturnType<typeof startFakeCarrier>>
  let site: string
  let agentInvitation: string
  let browser: Browser
  let phoneContext: BrowserContext
  let agent: Page
  let secure: Page
  let started: number
  const pageProblems: string[] = []

  /** What the SMSC was given to send since `from`, as one text. */
  const textsSince = (from: number) =>
    smsc.submits
      .slice(from)
      .map((pdu) => (pdu.short_message as { message: string }).message)
      .join('\n')
  async function nextText(from: number, pattern: RegExp): Promise<RegExpExecArray> {
    const deadline = Date.now() + WAIT
    for (;;) {
      const found = pattern.exec(textsSince(from))
      if (found) return found
      if (Date.now() > deadline) assert.fail(`no SMS matching ${pattern}: ${textsSince(from)}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  const consoleLog = () => agent.getByRole('log', { name: `Messages with ${CUSTOMER}` })
  const secureLog = () => secure.getByRole('log', { name: 'Messages' })
  const pivotPanel = () => agent.getByRole('region', { name: 'Secure channel' })

  before(async () => {
    assert.ok(haproxyInstalled, 'haproxy is not installed (apt-get install haproxy)')
    database = await createTestDatabase()
    stateDir = mkdtempSync(path.join(os.tmpdir(), 'sr-production-story-'))
    webDir = mkdtempSync(path.join(os.tmpdir(), 'sr-production-web-'))
    await buildWeb({ outDir: webDir, quiet: true })
    smsc = await startFakeSmsc(SMSC_LOGIN)
    carrier = await startFakeCarrier('carrier-token')
    const [httpsPort, n1, n2, n3, m1, m2, m3] = await Promise.all(Array.from({ length: 7 }, freePort))
    // Passkeys need the origin the customer's browser is on: the bank's name for the cluster, https://localhost.
    site = `https://localhost:${httpsPort}`
    cluster = await startCluster({
      stateDir,
      databaseUrl: database.url as string,
      natsUrl: process.env.NATS_URL as string,
      httpsPort: httpsPort as number,
      nodePorts: [n1, n2, n3] as [number, number, number],
      metricsPorts: [m1, m2, m3] as [number, number, number],
      nodeEnv: {
        LOG_LEVEL: 'warn',
        STRONGROOM_WEB_DIR: webDir,
        STRONGROOM_PUBLIC_URL: site,
        STRONGROOM_SMPP_HOSTS: `127.0.0.1:${smsc.port}`,
        STRONGROOM_SIM_SWAP_URL: carrier.url,
        STRONGROOM_SIM_SWAP_TOKEN: 'carrier-token',
      },
      strongroom: strongroomFromSource,
    })
    // The README's production steps: a tenant, its staff and a customer from the command line...
    const json = (args: string[]) => cluster.run(args) as Record<string, string>
    const tenantId = json(['tenant', 'create', '--name', 'Production Bank']).id as string
    const adminToken = json(['staff', 'token', '--tenant', tenantId, '--name', 'ops', '--role', 'admin']).token
    // Staff sign in to the console with a passkey they enrol from a single-use link, never with a pasted token.
    const agentStaff = json(['staff', 'invite', '--tenant', tenantId, '--name', 'alice', '--role', 'agent'])
    agentInvitation = agentStaff.url as string
    json(['customer', 'create', '--tenant', tenantId, '--ref', 'C-1', '--name', CUSTOMER, '--phone', CUSTOMER_PHONE])
    // ...then the admin API (on a node, inside the bank's network): the SMS channel and what a browser may approve.
    const admin = new StaffClient({
      baseUrl: cluster.nodes[1]?.url as string,
      credentials: new StaffToken(adminToken as string),
    })
    await admin.request('PUT', '/v1/channels/smpp', {
      address: BANK_NUMBER,
      host: '127.0.0.1',
      port: smsc.port,
      systemId: SMSC_LOGIN.systemId,
      agentId: agentStaff.staffId,
      secrets: { password: SMSC_LOGIN.password },
    })
    await admin.request('PUT', '/v1/policies/step-up', {
      rules: [],
      webDeviceMaxAmount: [{ value: 10000, currency: 'GBP' }],
    })
    await smsc.bound()

    // Chromium trusts the cluster's certificate (by its key), so that the pages are a secure context for WebAuthn.
    const certificate = new X509Certificate(cluster.caCertificate)
    const spki = createHash('sha256')
      .update(certificate.publicKey.export({ type: 'spki', format: 'der' }))
      .digest('base64')
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [`--ignore-certificate-errors-spki-list=${spki}`],
    })
    phoneContext = await browser.newContext({ viewport: { width: 360, height: 740 } })
    const agentContext = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    agent = await agentContext.newPage()
    watchPage(agent, pageProblems)
    // The agent's laptop: a platform authenticator that verifies the user (Chromium's virtual one).
    await addPlatformAuthenticator(agentContext, agent)
  })

  after(async () => {
    await browser?.close()
    await cluster?.stop()
    await smsc?.close()
    carrier?.server.close()
    await database?.drop()
    for (const dir of [stateDir, webDir]) if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('1. the customer texts the bank a card number, over SMPP', async () => {
    started = Date.now()
    const answer = await smsc.deliver({
      source_addr_ton: 1,
      source_addr_npi: 1,
      source_addr: CUSTOMER_PHONE.slice(1),
      dest_addr_ton: 1,
      dest_addr_npi: 1,
      destination_addr: BANK_NUMBER.slice(1),
      short_message: `Hello, my card ${PAN} was stolen`,
    })
    assert.equal(answer.command_status, 0)
  })

  test('2. the agent enrols a passkey from the invitation link and signs in with it: masked card, DLP badge; replies; moves the customer', async () => {
    assert.match(agentInvitation, new RegExp(`^${site}/console/\\?tenant=ten_[\\w-]+#invite=sri_`))
    await agent.goto(agentInvitation)
    await agent.getByRole('button', { name: 'Create a passkey and sign in' }).click()
    await agent.getByRole('heading', { name: 'Inbox' }).waitFor()
    assert.equal(new URL(agent.url()).hash, '', 'the invitation is taken out of the address')
    const item = agent.getByRole('button', { name: new RegExp(CUSTOMER) })
    await item.click()
    const masked = consoleLog().locator('.message', { hasText: 'was stolen' })
    await masked.getByText('Hello, my card [card •••• 1111] was stolen').waitFor()
    await masked.getByText('Masked by DLP: card number').waitFor()
    assert.equal(await agent.getByText(PAN).count(), 0, 'the card number is nowhere on the console')

    const beforeReply = smsc.submits.length
    await agent.getByLabel(/Reply (by|on) SMS/).fill('I have blocked that card. Let us continue securely.')
    await agent.keyboard.press('Enter')
    await nextText(beforeReply, /I have blocked that card/)
    await agent.screenshot({ path: path.join(outputDir, 'production-story-console.png') })
  })

  let link: string
  let cdp: CDPSession
  let authenticatorId: string
  test('3. the link arrives by SMS; the customer opens it at 360 px and steps up with the texted code', async () => {
    // DLP texted the known customer a link when it hid the card number: that is the one live link, and the console
    // offers no second one. Without it (an unknown number), the agent's button sends it.
    const pattern = /https:\/\/localhost:\d+\/secure\/#t=[A-Za-z0-9_-]+/
    await pivotPanel()
      .getByText(/Secure link on|No secure link sent yet/)
      .waitFor()
    if ((await pivotPanel().locator('[data-state="sent"]').count()) === 0) {
      await pivotPanel().getByRole('button', { name: 'Move to secure channel' }).click()
    }
    link = (await nextText(0, pattern))[0]
    assert.equal(textsSince(0).match(new RegExp(pattern, 'g'))?.length, 1, 'one link reached the customer')
    secure = await phoneContext.newPage()
    watchPage(
      secure,
      pageProblems,
      // The browser makes the MLS group and adds whom it can (a refusal there is the protocol); it approves with its
      // device key first and is told, as a browser, to use a passkey.
      (status, pathname) =>
        (status === 409 && /\/e2e\/(group|key-packages\/claim)$/.test(pathname)) ||
        (status === 403 && /\/v1\/consents\/[^/]+\/approve$/.test(pathname)),
    )
    ;({ cdp, authenticatorId } = await addPlatformAuthenticator(phoneContext, secure))
    await secure.goto(link)
    await secure.getByRole('heading', { name: 'Confirm it’s you' }).waitFor()
    const beforeCode = smsc.submits.length
    await secure.getByRole('button', { name: 'Text me a code' }).click()
    const code = (await nextText(beforeCode, /code: (\d{6})\./))[1] as string
    await secure.getByLabel('6-digit code').fill(code)
    await secure.keyboard.press('Enter')
    await secureLog().getByText('Hello, my card [card •••• 1111] was stolen').waitFor()
    const items = await secureLog().locator('li').allTextContents()
    const at = (text: string) => items.findIndex((item) => item.includes(text))
    assert.ok(at('Earlier, on SMS') >= 0 && at('Earlier, on SMS') < at('was stolen'), `the divider: ${items}`)
    assert.ok(at('was stolen') < at('I have blocked that card'), 'the public history, in order')
    await pivotPanel().locator('[data-state="completed"]').waitFor()
  })

  test('4. agent and customer write end to end encrypted, the customer as a browser device with no integrity token', async () => {
    await writeEndToEnd(agent, secure, CUSTOMER)
    // The console tells the agent that the customer is on a browser, which cannot attest.
    const customerPanel = agent.getByRole('region', { name: 'Customer' })
    await customerPanel.getByRole('button', { name: 'Check again' }).click()
    await customerPanel.getByText(/Browser device: no attestation/).waitFor()
    await customerPanel.getByText('· browser').waitFor()
  })

  test('5. the agent asks for a payment; the browser approves it with a passkey it makes; the receipt verifies', async () => {
    const asked = await askForPayment(agent, replacementCardFee('Production Bank'))

    const card = paymentCard(secure, 'Pay GBP 25.00?')
    await card.getByRole('button', { name: 'Approve GBP 25.00' }).click()
    await card.getByRole('button', { name: 'Confirm and approve' }).click()
    await card.getByText('Approved.').waitFor()
    // Refused its device key as a browser, it made a passkey (user verified) and approved with it.
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId })
    assert.equal(credentials.length, 1, 'the browser made one passkey')
    await secure.screenshot({ path: path.join(outputDir, 'production-story-approved.png') })
    await asked.getByRole('status').getByText('Approved').waitFor()
    await asked.getByText('Signed receipt checked: the customer approved exactly this.').waitFor()
    console.log(`the production story, from the first text to the verified receipt, took ${Date.now() - started} ms`)
  })

  test('the pages ran with no script error, policy violation or unexpected failed request', () => {
    assert.deepEqual(pageProblems, [])
  })
})
