/**
 * Writing to a customer first, in Chromium (issue 20): an agent finds a customer who never wrote, starts an SMS
 * conversation with them and writes on WhatsApp (as the approved template, outside the 24 hours) and sends a secure link by SMS, warned
 * first that the customer's SIM card was swapped. The customer's secure page in that SIM-swap state: without a
 * passkey it says how to continue; with one it offers the passkey, and the passkey gets them in. A supervisor lifts a
 * payee block a "This wasn't me" decline put, with a reason. axe on each screen;
 * screenshots in packages/web/test-output/.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { enrolDevice, type PasskeyCreationOptions, type StaffClient } from '@strongroom/sdk'
import { ChannelSimulator, type PhoneMessage } from '@strongroom/sdk/simulator'
import { configureSimulatedChannels, type TestBank, type TestServer } from '@strongroom/server/testing'
import type { Browser, Page } from 'playwright-core'
import {
  addPlatformAuthenticator,
  assertAccessible,
  eventually,
  outputDir,
  signInToConsole,
  startBankPages,
  watchPage,
  webAuthnOrigin,
  withoutChromium,
} from '../browser-testing.ts'

const BANK_NUMBER = '+442079460321'
const WHATSAPP_NUMBER_ID = '109876543210321'
const MIRA_PHONE = '+447700900321'
const PETRA_PHONE = '+447700900322'
const FIRST_TEXT = 'Hello Mira, this is the bank about the card you ordered.'
const NO_CODE =
  'For your security, we cannot text a code to your phone right now. Open the link in your bank’s app, or call the ' +
  'number on the back of your card.'

describe('writing to a customer first, and a swapped SIM, in Chromium', { skip: withoutChromium }, () => {
  let server: TestServer
  let origin: string
  let bank: TestBank
  let agent: StaffClient
  let browser: Browser
  let page: Page
  let phone: ChannelSimulator
  let petraId: string
  let petraApp: Awaited<ReturnType<typeof enrolDevice>>
  const pageProblems: string[] = []
  // The customer's page asks for a code the carrier's SIM-swap answer refuses: 403 there is the point.
  const expected = (status: number, pathname: string) => status === 403 && pathname === '/v1/pivot/step-up/sms'

  const toPhone = async (connector: 'twilio' | 'whatsapp', address: string): Promise<PhoneMessage[]> =>
    (await phone.thread(connector, address)).filter((m) => m.direction === 'to-phone')
  const swapSim = async (number: string) => {
    const swapped = await fetch(`${server.url}/dev/camara/sim-swaps/${encodeURIComponent(number)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ swappedAt: new Date(Date.now() - 3_600_000).toISOString() }),
    })
    assert.equal(swapped.status, 204)
  }
  /** The secure link in the last SMS to a number. */
  const linkTextedTo = async (number: string) => {
    const text = (await toPhone('twilio', number)).at(-1)?.text ?? ''
    const link = /https?:\/\/\S+#t=srp_[A-Za-z0-9_-]+/.exec(text)?.[0]
    assert.ok(link, 'the SMS carries the link')
    return link
  }
  const shot = (target: Page, name: string) => target.screenshot({ path: path.join(outputDir, `${name}.png`) })

  before(async () => {
    const local = await webAuthnOrigin()
    origin = local.origin
    const started = await startBankPages('Outreach Browser Bank', local.overrides)
    ;({ server, bank, agentApi: agent, browser } = started)
    await configureSimulatedChannels(server.ctx, bank.adminToken, bank.agentId, {
      twilio: BANK_NUMBER,
      whatsapp: WHATSAPP_NUMBER_ID,
    })
    // Only a message template: the pivot template's URL button must be https, which this test's origin is not.
    await started.adminApi.request('PUT', '/v1/channels/whatsapp/templates', {
      templates: [
        { purpose: 'message', name: 'bank_update', language: 'en_GB', category: 'UTILITY', parameters: ['text'] },
      ],
    })
    await agent.createCustomer({ externalRef: 'OUT-MIRA', displayName: 'Mira Okafor', phoneNumber: MIRA_PHONE })
    petraId = (
      await agent.createCustomer({ externalRef: 'OUT-PETRA', displayName: 'Petra Passkey', phoneNumber: PETRA_PHONE })
    ).id
    const { code } = await agent.issueEnrolmentCode(petraId)
    petraApp = await enrolDevice({ baseUrl: server.url, enrolmentCode: code, label: 'phone app' })
    // The carrier says both SIM cards changed an hour ago.
    await swapSim(MIRA_PHONE)
    await swapSim(PETRA_PHONE)
    phone = new ChannelSimulator({ baseUrl: server.url })
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage()
    watchPage(page, pageProblems, expected)
    await signInToConsole(page, origin, bank.agentToken)
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
  })

  test('the agent finds a customer who never wrote, is warned of the SIM swap, and starts an SMS conversation', async () => {
    await page.getByLabel('Find a customer', { exact: true }).fill('+44 7700 900321')
    await page.getByRole('button', { name: 'Search', exact: true }).click()
    await page.getByText('No conversation yet').waitFor()
    await page.getByRole('button', { name: 'Write to Mira Okafor' }).click()
    const panel = page.getByRole('region', { name: 'Write to Mira Okafor' })
    await panel
      .getByRole('alert')
      .getByText(/SIM card was changed in the last 72 hours/)
      .waitFor()
    assert.equal(await panel.getByRole('radio', { name: 'SMS' }).isChecked(), true)
    await assertAccessible(page, 'write to a customer first')
    await shot(page, 'console-outreach')
    await panel.getByLabel('Message').fill(FIRST_TEXT)
    await panel.getByRole('button', { name: 'New conversation' }).click()
    await eventually(
      async () => (await toPhone('twilio', MIRA_PHONE)).map((m) => m.text),
      (texts) => texts.includes(FIRST_TEXT),
      'the first text on the phone',
    )
    // The search gives way to the inbox, where the conversation is, open: the agent's text in its timeline.
    await page
      .getByRole('navigation', { name: 'Inbox' })
      .getByRole('button', { name: /Mira Okafor/ })
      .waitFor()
    await page.getByRole('log', { name: 'Messages with Mira Okafor' }).getByText(FIRST_TEXT).waitFor()
  })

  test('beside the conversation: a WhatsApp message as the approved template, then a secure link by SMS', async () => {
    const panel = page.getByRole('region', { name: 'Write to Mira Okafor' })
    await panel.getByRole('radio', { name: 'WhatsApp' }).check()
    await panel.getByText(/it goes out as the bank’s approved template/).waitFor()
    // No pivot template is registered: no secure link can go on WhatsApp now.
    assert.equal(await panel.getByRole('button', { name: 'Send secure link' }).isDisabled(), true)
    await panel.getByLabel('Message').fill('Your new card is on its way.')
    await panel.getByRole('button', { name: 'New conversation' }).click()
    await page.getByText('Sent to Mira Okafor by WhatsApp.').waitFor()
    const [template] = await toPhone('whatsapp', MIRA_PHONE.slice(1))
    assert.equal(template?.text, 'bank_update: Your new card is on its way.')
    await panel.getByRole('radio', { name: 'SMS' }).check()
    await panel
      .getByRole('alert')
      .getByText(/SIM card was changed/)
      .waitFor()
    await panel.getByRole('button', { name: 'Send secure link' }).click()
    await page.getByText('Secure link sent to Mira Okafor by SMS.').waitFor()
    await assertAccessible(page, 'secure link sent from the customer panel')
    await shot(page, 'console-outreach-link')
  })

  test('the customer with no passkey, SIM swapped, is told how to continue', async () => {
    const customer = await (await browser.newContext({ viewport: { width: 360, height: 740 } })).newPage()
    watchPage(customer, pageProblems, expected)
    await customer.goto(await linkTextedTo(MIRA_PHONE))
    await customer.getByRole('heading', { name: 'Confirm it’s you' }).waitFor()
    assert.equal(await customer.getByRole('button', { name: 'Use my passkey' }).count(), 0)
    await customer.getByRole('button', { name: 'Text me a code' }).click()
    await customer.getByText(NO_CODE).waitFor()
    await assertAccessible(customer, 'step-up, SIM swapped, no passkey')
    await shot(customer, 'secure-sim-swapped-no-passkey')
    await customer.context().close()
  })

  test('the customer with a passkey, SIM swapped, is offered it and gets in with it', async () => {
    const context = await browser.newContext({ viewport: { width: 360, height: 740 } })
    const customer = await context.newPage()
    watchPage(customer, pageProblems, expected)
    await addPlatformAuthenticator(context, customer)
    // Earlier, from the bank's app, Petra registered a passkey made by this browser's authenticator.
    await customer.goto(`${origin}/secure/`)
    const options = await petraApp.client.passkeyRegistrationOptions()
    const credential = await customer.evaluate(async (json: PasskeyCreationOptions) => {
      const made = (await navigator.credentials.create({
        publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(json as never),
      })) as PublicKeyCredential
      return made.toJSON()
    }, options)
    await petraApp.client.registerPasskey(credential)
    const sent = await agent.sendSecureLink(petraId, { connector: 'twilio' })
    assert.ok(sent.message)
    await customer.goto(await linkTextedTo(PETRA_PHONE))
    await customer.getByRole('heading', { name: 'Confirm it’s you' }).waitFor()
    await customer.getByRole('button', { name: 'Text me a code' }).click()
    await customer
      .getByText('For your security, we cannot text a code to your phone right now. Use your passkey instead.')
      .waitFor()
    await assertAccessible(customer, 'step-up, SIM swapped, with a passkey')
    await shot(customer, 'secure-sim-swapped-passkey')
    await customer.getByRole('button', { name: 'Use my passkey' }).click()
    await customer.getByRole('heading', { name: 'Secure chat', level: 1 }).waitFor()
    const [completed] = await agent.listPivotLinks(sent.conversationId)
    assert.deepEqual([completed?.status, completed?.completedVia], ['completed', 'passkey'])
    await context.close()
  })

  test('a supervisor sees the payee the customer blocked with “This wasn’t me” and lifts the block with a reason', async () => {
    const payee = { name: 'Quick Parcel Ltd', account: 'GB33BUKB20201555555555' }
    const ask = (reference: string) =>
      agent.requestConsent({ customerId: petraId, amount: { value: 99000, currency: 'GBP' }, payee, reference })
    await petraApp.client.declineConsent((await ask('Customs fee')).id, { fraud: true, blockPayee: true })
    const supervisor = await bank.staffToken('supervisor', 'sue')
    const desk = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage()
    watchPage(desk, pageProblems, expected)
    await signInToConsole(desk, origin, supervisor.token)
    await desk.getByRole('checkbox', { name: 'Whole team' }).check()
    await desk
      .getByRole('navigation', { name: 'Inbox' })
      .getByRole('button', { name: /Petra Passkey/ })
      .click()
    const panel = desk.getByRole('region', { name: 'Blocked payees' })
    await panel.getByText('Quick Parcel Ltd').waitFor()
    await panel.getByRole('button', { name: 'Lift the block on Quick Parcel Ltd' }).click()
    await panel.getByLabel('Why lift it (kept in the audit log)').fill('Customer called from the number on file')
    await assertAccessible(desk, 'lifting a payee block')
    await shot(desk, 'console-payee-block')
    await panel.getByRole('button', { name: 'Lift block', exact: true }).click()
    await panel.getByText('Payments to Quick Parcel Ltd can be requested again.').waitFor()
    await panel.getByText('No payee is blocked for this customer.').waitFor()
    assert.equal((await ask('After the lift')).status, 'pending')
    await desk.context().close()
  })

  test('no script error, CSP violation or failed request on any page', () => {
    assert.deepEqual(pageProblems, [])
  })
})
