import type { ConsentReceipt } from '@strongroom/sdk'
import type { TrackedConsent } from './consent-tracker.ts'
import { formatMoney } from './money.ts'

const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' })

/** How each factor reads in a sentence about the customer ("Approved by Jane Doe with their passkey"). */
const factorWords: Record<string, string> = {
  'device-key': 'on their registered device',
  passkey: 'with their passkey',
  totp: 'with a code from their authenticator app',
  'sms-otp': 'with a code sent to their phone',
  'sms-reply': 'by replying to a text message',
}

/** "on their registered device with their passkey": the factors of an approval as a person would say them. */
export function approvedWith(receipt: Pick<ConsentReceipt, 'factors'>): string {
  return receipt.factors.map((factor) => factorWords[factor] ?? factor).join(' and ')
}

/** What a payment request asks, in one line: "EUR 25.00 to Jane Doe". */
export function paymentLine(consent: TrackedConsent['consent']): string {
  return `${formatMoney(consent.amount.value, consent.amount.currency)} to ${consent.payee.name}`
}

/**
 * The outcome of a payment request as the agent reads it in the timeline and on its card: "Approved by Jane Doe with
 * their passkey, 14:02"; the technical details (device, key, assurance, minor units) stay in the receipt's details.
 */
export function outcomeSentence(tracked: TrackedConsent, customerName: string): string {
  const { consent, receipt } = tracked
  const at = consent.decidedAt ? `, ${clock.format(new Date(consent.decidedAt))}` : ''
  switch (consent.status) {
    case 'pending':
      return `Waiting for ${customerName} to confirm (until ${clock.format(new Date(consent.expiresAt))})`
    case 'expired':
      return `Not answered in time: expired at ${clock.format(new Date(consent.expiresAt))}`
    case 'declined':
      return consent.fraudReported
        ? `${customerName} said this wasn’t them${at}. The bank’s fraud team was told${consent.payeeBlocked ? ' and payments to this payee are blocked' : ''}.`
        : `Declined by ${customerName}${at}`
    case 'approved':
      if (receipt && 'verified' in receipt) {
        return `Approved by ${customerName} ${approvedWith(receipt.verified)}${at}`
      }
      if (receipt && 'error' in receipt) return `Approved${at}, but its receipt does not verify: do not rely on it`
      return `Approved by ${customerName}${at}`
  }
}
