import { StrongroomError } from '@strongroom/sdk'
import { useEffect, useMemo, useState } from 'preact/hooks'
import type { TrackedConsent } from './consent-tracker.ts'
import { outcomeSentence } from './consent-words.ts'
import { formatMoney, parseMoney } from './money.ts'
import type { ConsoleSession } from './session.ts'

const CURRENCIES = ['EUR', 'GBP', 'USD', 'CHF', 'SEK', 'PLN', 'JPY'] as const
const EXPIRIES = [
  { seconds: 300, label: '5 minutes' },
  { seconds: 900, label: '15 minutes' },
  { seconds: 3600, label: '1 hour' },
  { seconds: 86400, label: '24 hours' },
] as const
const dayAndTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' })

const statusLabel = (consent: TrackedConsent['consent']): string =>
  consent.fraudReported
    ? 'Reported as fraud'
    : { pending: 'Waiting for the customer', approved: 'Approved', declined: 'Declined', expired: 'Expired' }[
        consent.status
      ]

/**
 * Asks the conversation's customer to confirm a payment: the amount typed as money and sent in minor units, shown
 * back formatted for its currency before it goes; then each request's live status and, once approved, what its
 * signed receipt proves (verified here against the server's published keys) with the receipt to download.
 */
export function ConsentPanel(props: { session: ConsoleSession; conversationId: string; customerId: string }) {
  const { session, conversationId } = props
  const customerName = session.entries.get(conversationId)?.customerName ?? 'The customer'
  const [, setTick] = useState(0)
  const [loadError, setLoadError] = useState<string | undefined>(undefined)
  useEffect(() => session.consents.subscribe(() => setTick((t) => t + 1)), [session])
  useEffect(() => {
    session.consents.load(conversationId).catch((e: Error) => setLoadError(e.message))
  }, [session, conversationId])
  const requests = session.consents.of(conversationId)
  return (
    <section class="panel" aria-labelledby="consent-heading">
      <h2 id="consent-heading">Payment confirmation</h2>
      <ConsentForm {...props} />
      {loadError && (
        <p class="alert" role="alert">
          Earlier confirmations could not be loaded: {loadError}
        </p>
      )}
      {requests.length > 0 && (
        <ol class="consents" aria-label="Confirmations asked in this conversation">
          {requests.map((tracked) => (
            <ConsentCard key={tracked.consent.id} tracked={tracked} customerName={customerName} />
          ))}
        </ol>
      )}
    </section>
  )
}

function ConsentForm(props: { session: ConsoleSession; conversationId: string; customerId: string }) {
  const [amount, setAmount] = useState('')
  const [currency, setCurrency] = useState<string>('EUR')
  const [payeeName, setPayeeName] = useState('')
  const [payeeAccount, setPayeeAccount] = useState('')
  const [reference, setReference] = useState('')
  const [expiresIn, setExpiresIn] = useState(300)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | undefined>(undefined)
  const [touched, setTouched] = useState(false)
  const parsed = useMemo(() => parseMoney(amount, currency), [amount, currency])
  const amountError = 'error' in parsed && (touched || amount !== '') ? parsed.error : undefined

  const submit = async (event: Event) => {
    event.preventDefault()
    setTouched(true)
    if (!('minor' in parsed) || busy) return
    setBusy(true)
    setError(undefined)
    try {
      await props.session.consents.request(props.conversationId, {
        customerId: props.customerId,
        amount: { value: parsed.minor, currency },
        payee: { name: payeeName.trim(), account: payeeAccount.replace(/\s+/g, '') },
        reference: reference.trim(),
        expiresInSeconds: expiresIn,
      })
      setAmount('')
      setPayeeName('')
      setPayeeAccount('')
      setReference('')
      setTouched(false)
    } catch (e) {
      setError(
        `Not sent: ${e instanceof StrongroomError ? (e.problem.detail ?? e.problem.title) : (e as Error).message}`,
      )
    } finally {
      setBusy(false)
    }
  }

  return (
    <form class="consent-form" onSubmit={submit}>
      <div class="amount-row">
        <div>
          <label for="consent-amount">Amount</label>
          <input
            id="consent-amount"
            inputMode="decimal"
            autocomplete="off"
            required
            value={amount}
            aria-invalid={amountError ? 'true' : undefined}
            aria-describedby="consent-amount-shown"
            onInput={(e) => setAmount((e.target as HTMLInputElement).value)}
            onBlur={() => setTouched(true)}
          />
        </div>
        <div>
          <label for="consent-currency">Currency</label>
          <select
            id="consent-currency"
            value={currency}
            onChange={(e) => setCurrency((e.target as HTMLSelectElement).value)}
          >
            {CURRENCIES.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </div>
      </div>
      <p id="consent-amount-shown" class={amountError ? 'field-error' : 'help'} aria-live="polite">
        {'minor' in parsed
          ? `The customer is asked to confirm ${formatMoney(parsed.minor, currency)}.`
          : (amountError ?? 'Type the amount as money, for example 1250.00.')}
      </p>
      <label for="consent-payee">Payee name</label>
      <input
        id="consent-payee"
        required
        maxLength={140}
        autocomplete="off"
        value={payeeName}
        onInput={(e) => setPayeeName((e.target as HTMLInputElement).value)}
      />
      <label for="consent-account">Payee account (IBAN or account number)</label>
      <input
        id="consent-account"
        required
        maxLength={64}
        autocomplete="off"
        spellcheck={false}
        value={payeeAccount}
        onInput={(e) => setPayeeAccount((e.target as HTMLInputElement).value)}
      />
      <label for="consent-reference">Reference</label>
      <input
        id="consent-reference"
        required
        maxLength={140}
        autocomplete="off"
        value={reference}
        onInput={(e) => setReference((e.target as HTMLInputElement).value)}
      />
      <label for="consent-expiry">The customer has</label>
      <select
        id="consent-expiry"
        value={String(expiresIn)}
        onChange={(e) => setExpiresIn(Number((e.target as HTMLSelectElement).value))}
      >
        {EXPIRIES.map((option) => (
          <option key={option.seconds} value={String(option.seconds)}>
            {option.label}
          </option>
        ))}
      </select>
      <button type="submit" disabled={busy}>
        {busy ? 'Sending…' : 'Ask the customer to confirm'}
      </button>
      {error && (
        <p class="alert" role="alert">
          {error}
        </p>
      )}
    </form>
  )
}

function ConsentCard(props: { tracked: TrackedConsent; customerName: string }) {
  const { consent, receipt } = props.tracked
  const money = formatMoney(consent.amount.value, consent.amount.currency)
  return (
    <li class={`consent status-${consent.status}${consent.fraudReported ? ' fraud' : ''}`}>
      <p class="consent-head">
        <strong>{money}</strong> to {consent.payee.name}
        <span class={`consent-status${consent.fraudReported ? ' badge danger' : ''}`} role="status">
          {statusLabel(consent)}
        </span>
      </p>
      <p class="consent-outcome">{outcomeSentence(props.tracked, props.customerName)}</p>
      <dl class="facts">
        <dt>Account</dt>
        <dd>{consent.payee.account}</dd>
        <dt>Reference</dt>
        <dd>{consent.reference}</dd>
        <dt>{consent.status === 'pending' ? 'Expires' : 'Asked'}</dt>
        <dd>
          {consent.status === 'pending' ? (
            <time dateTime={consent.expiresAt}>{dayAndTime.format(new Date(consent.expiresAt))}</time>
          ) : (
            <time dateTime={consent.createdAt}>{dayAndTime.format(new Date(consent.createdAt))}</time>
          )}
        </dd>
      </dl>
      {consent.receipt && <Receipt consentId={consent.id} jws={consent.receipt} receipt={receipt} />}
    </li>
  )
}

function Receipt(props: { consentId: string; jws: string; receipt: TrackedConsent['receipt'] }) {
  const { receipt } = props
  const download = useMemo(() => URL.createObjectURL(new Blob([props.jws], { type: 'application/jose' })), [props.jws])
  useEffect(() => () => URL.revokeObjectURL(download), [download])
  return (
    <div class="receipt">
      {receipt === undefined && <p class="help">Checking the signed receipt…</p>}
      {receipt && 'error' in receipt && (
        <p class="alert" role="alert">
          The signed receipt does not verify ({receipt.error}): do not rely on this approval, and tell your security
          team.
        </p>
      )}
      {receipt && 'verified' in receipt && (
        <p class="verified">Signed receipt checked: the customer approved exactly this.</p>
      )}
      <details>
        <summary>Receipt details (for compliance)</summary>
        {receipt && 'verified' in receipt && (
          <dl class="facts">
            <dt>Approved at</dt>
            <dd>
              <time dateTime={receipt.verified.approvedAt}>
                {dayAndTime.format(new Date(receipt.verified.approvedAt))}
              </time>
            </dd>
            <dt>Amount</dt>
            <dd>
              {formatMoney(receipt.verified.transaction.amount.value, receipt.verified.transaction.amount.currency)} (
              {receipt.verified.transaction.amount.value} in minor units)
            </dd>
            <dt>Payee</dt>
            <dd>
              {receipt.verified.transaction.payee.name}, {receipt.verified.transaction.payee.account}
            </dd>
            <dt>Factors</dt>
            <dd>{receipt.verified.factors.join(' + ')}</dd>
            <dt>Device</dt>
            <dd>{receipt.verified.deviceId ?? 'none (SMS reply)'}</dd>
            <dt>Assurance</dt>
            <dd>{receipt.verified.policy.assurance}</dd>
            <dt>Signing key</dt>
            <dd>{receipt.verified.keyId}</dd>
          </dl>
        )}
        <p class="receipt-actions">
          <a class="button-link" href={download} download={`receipt-${props.consentId}.jws`}>
            Download receipt (JWS)
          </a>
        </p>
        <p class="jws">{props.jws}</p>
        <p class="help">
          Anyone can check it offline with the keys at <code>/.well-known/jwks.json</code>:{' '}
          <code>node scripts/verify-receipt.js receipt.jws jwks.json</code>.
        </p>
      </details>
    </div>
  )
}
