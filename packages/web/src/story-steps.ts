/**
 * The steps the whole story shares in its two settings (story.browser.test.ts on a dev server with the simulator,
 * production-story.browser.test.ts on a production cluster): the agent and the customer writing end to end encrypted,
 * and the agent asking for a payment that the customer's secure page shows as a card.
 */
import type { Locator, Page } from 'playwright-core'
import { secureLog } from './pivot-pages.ts'

/**
 * The agent opens the secure conversation from the pivot panel and writes; the customer's page decrypts it and
 * answers; the console decrypts the answer.
 */
export async function writeEndToEnd(agent: Page, secure: Page, customer: string): Promise<void> {
  const welcome = 'Welcome, Grace. Your new card can be paid for here.'
  const answer = 'Thank you. How much is it?'
  await agent
    .getByRole('region', { name: 'Secure channel' })
    .getByRole('button', { name: 'Open the secure conversation' })
    .click()
  await agent.locator('.conversation-head').getByText('Secure', { exact: true }).waitFor()
  await agent.getByLabel('Reply', { exact: true }).fill(welcome)
  // Send waits (disabled, saying why) until the customer's browser has made the group and the console has joined.
  await agent.getByRole('button', { name: 'Send', exact: true }).click()
  await secureLog(secure).getByText(welcome).waitFor()
  await secure.getByRole('textbox', { name: 'Message' }).fill(answer)
  await secure.keyboard.press('Enter')
  await agent
    .getByRole('log', { name: `Messages with ${customer}` })
    .getByText(answer)
    .waitFor()
}

/** A payment as the agent types it into the console's form. */
export interface PaymentForm {
  amount: string
  currency: string
  payeeName: string
  payeeAccount: string
  reference: string
}

/** What the story's customer is asked to pay for their new card, to the bank's card services. */
export const replacementCardFee = (bankName: string): PaymentForm => ({
  amount: '25.00',
  currency: 'GBP',
  payeeName: `${bankName} Card Services`,
  payeeAccount: 'GB29NWBK60161331926819',
  reference: 'Replacement card fee',
})

/**
 * The agent asks the customer to confirm a payment from the console's form; the request shows as waiting for the
 * customer. Gives the request in the console, to follow its status.
 */
export async function askForPayment(agent: Page, payment: PaymentForm): Promise<Locator> {
  await agent.getByLabel('Amount').fill(payment.amount)
  await agent.getByLabel('Currency').selectOption(payment.currency)
  await agent.getByLabel('Payee name').fill(payment.payeeName)
  await agent.getByLabel('Payee account (IBAN or account number)').fill(payment.payeeAccount)
  await agent.getByLabel('Reference').fill(payment.reference)
  await agent.getByRole('button', { name: 'Ask the customer to confirm' }).click()
  const asked = agent.locator('.consent').filter({ hasText: payment.payeeName })
  await asked.getByRole('status').getByText('Waiting for the customer').waitFor()
  return asked
}

/** The payment's card on the customer's secure page, by the question it asks ("Pay GBP 25.00?"). */
export const paymentCard = (secure: Page, question: string): Locator =>
  secure.getByRole('region', { name: 'Payments to confirm' }).getByRole('article', { name: question })
