import { channelNames, formatAmount, type PublicMessage, problemKind } from '@strongroom/sdk'
import type { ComponentChildren } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import { AttachmentView } from '../shared/Attachment.tsx'
import { MessageComposer } from '../shared/MessageComposer.tsx'
import { getPasskeyAssertion } from '../shared/passkey.ts'
import { Arrival, type Screen } from './arrival.ts'
import type { ChatMessage, ChatSession, ConsentCard } from './chat-session.ts'

const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' })

/** The customer's secure chat, from the pivot link to the conversation (or to the page that says why not). */
export function App(props: { token: string | undefined }) {
  const [screen, setScreen] = useState<Screen>({ kind: 'loading' })
  const [failure, setFailure] = useState<string | undefined>(undefined)
  const arrival = useRef<Arrival>()
  useEffect(() => {
    const visit = new Arrival(location.origin, () => setScreen({ kind: 'wiped' }))
    arrival.current = visit
    visit.start(props.token).then(setScreen, (error: Error) => setFailure(error.message))
  }, [props.token])
  if (failure) {
    return (
      <Page title="Something went wrong">
        <p>The secure chat could not start: {failure}</p>
        <p>Check your connection and open the link again.</p>
      </Page>
    )
  }
  const visit = arrival.current
  switch (screen.kind) {
    case 'loading':
      return (
        <Page title="Secure chat">
          <p role="status">Checking your link…</p>
        </Page>
      )
    case 'no-link':
      return (
        <Page title="Secure chat">
          <p>
            Open the link your bank sent you by SMS, WhatsApp or Messenger to continue your conversation here,
            end-to-end encrypted.
          </p>
        </Page>
      )
    case 'link-error':
      return <LinkError reason={screen.reason} chatHere={screen.chatHere} />
    case 'step-up':
      return <StepUp arrival={visit as Arrival} screen={screen} onDone={setScreen} />
    case 'chat':
      return <Chat session={screen.session} />
    case 'wiped':
      return <Wiped />
  }
}

/** A page with its heading focused on arrival, so that a screen reader starts at the top of each new screen. */
function Page(props: { title: string; children: ComponentChildren }) {
  const heading = useRef<HTMLHeadingElement>(null)
  useEffect(() => heading.current?.focus(), [props.title])
  return (
    <main class="centered">
      <div class="card">
        <h1 ref={heading} tabIndex={-1}>
          {props.title}
        </h1>
        {props.children}
      </div>
    </main>
  )
}

const linkErrors = {
  expired: {
    title: 'This link has expired',
    text: 'For your security, a secure-chat link works for a few minutes only.',
  },
  used: {
    title: 'This link was already used',
    text: 'For your security, a secure-chat link works once. If you did not open it yourself, tell your bank.',
  },
  replaced: {
    title: 'A newer link replaced this one',
    text: 'For your security, only the newest link your bank sent you works.',
  },
  invalid: {
    title: 'This link is not valid',
    text: 'The link may be incomplete. Open it again from the message your bank sent you.',
  },
} as const

function LinkError(props: { reason: keyof typeof linkErrors; chatHere: boolean }) {
  const { title, text } = linkErrors[props.reason]
  return (
    <Page title={title}>
      <p>{text}</p>
      {props.chatHere ? (
        <>
          <p>This browser is already set up for your secure chat: you do not need a link to continue here.</p>
          <p>
            <a href="/secure/">Open your secure chat</a>
          </p>
        </>
      ) : (
        <p>
          {props.reason === 'replaced'
            ? 'Open the newest link from your bank, or reply in your conversation with the bank to ask for a new one.'
            : 'Reply in your conversation with the bank to ask for a new link.'}
        </p>
      )}
    </Page>
  )
}

function StepUp(props: {
  arrival: Arrival
  screen: Extract<Screen, { kind: 'step-up' }>
  onDone: (screen: Screen) => void
}) {
  const { arrival, screen } = props
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | undefined>(undefined)
  const [codeSent, setCodeSent] = useState(false)
  const [code, setCode] = useState('')
  const codeInput = useRef<HTMLInputElement>(null)
  const triedPasskey = useRef(false)
  useEffect(() => {
    if (codeSent) codeInput.current?.focus()
  }, [codeSent])

  const attempt = async (action: () => Promise<void>) => {
    setBusy(true)
    setError(undefined)
    try {
      await action()
    } catch (e) {
      const type = problemKind(e)
      setError(
        type === 'auth/invalid-code'
          ? 'That code is not right. Check the text message and try again.'
          : type === 'auth/passkey-invalid'
            ? 'The passkey could not be verified. Try again.'
            : type === 'auth/sms-rate-limited'
              ? 'Too many codes were sent. Wait a few minutes, then try again.'
              : type === 'risk/sim-swapped' || type === 'risk/sim-swap-unavailable'
                ? screen.options.passkey
                  ? 'For your security, we cannot text a code to your phone right now. Use your passkey instead.'
                  : 'For your security, we cannot text a code to your phone right now. Open the link in your bank’s app, or call the number on the back of your card.'
                : e instanceof DOMException
                  ? 'The passkey was not used. Try again when you are ready.'
                  : 'Something went wrong. Try again.',
      )
      setBusy(false)
    }
  }
  const withPasskey = () =>
    attempt(async () => {
      let options = screen.options.passkey
      // Each challenge works once: after a try, whatever its outcome, a new one is asked for.
      if (triedPasskey.current) {
        const fresh = await arrival.stepUpOptions(screen.token)
        if (fresh.kind !== 'step-up') return props.onDone(fresh)
        options = fresh.options.passkey
      }
      if (!options) return
      triedPasskey.current = true
      const assertion = await getPasskeyAssertion(options)
      props.onDone(await arrival.stepUp(screen.token, { kind: 'passkey', assertion }))
    })
  const sendCode = () =>
    attempt(async () => {
      await arrival.sendSmsCode(screen.token)
      setCodeSent(true)
      setBusy(false)
    })
  const confirmCode = (event: Event) => {
    event.preventDefault()
    void attempt(async () => props.onDone(await arrival.stepUp(screen.token, { kind: 'sms-otp', code: code.trim() })))
  }
  const { passkey, sms } = screen.options
  return (
    <Page title="Confirm it’s you">
      <p>To continue your conversation securely in this browser, confirm it is you.</p>
      {screen.replacing && (
        <p class="note">
          This browser is set up for another account. Continuing sets it up for yours and erases the other account’s
          secure chat from it.
        </p>
      )}
      {!passkey && !sms && (
        <p>We cannot confirm it is you in this browser. Open the link in your bank’s app, or ask your bank for help.</p>
      )}
      <div class="actions">
        {passkey && (
          <button type="button" onClick={() => void withPasskey()} disabled={busy}>
            Use my passkey
          </button>
        )}
        {sms && !codeSent && (
          <button type="button" class={passkey ? 'secondary' : ''} onClick={() => void sendCode()} disabled={busy}>
            Text me a code
          </button>
        )}
      </div>
      {codeSent && (
        <form class="code-form" onSubmit={confirmCode}>
          <p id="code-help">We sent a 6-digit code to your phone number on file. It works for 5 minutes.</p>
          <label for="sms-code">6-digit code</label>
          <input
            id="sms-code"
            ref={codeInput}
            name="sms-code"
            inputMode="numeric"
            autocomplete="one-time-code"
            pattern="[0-9]{6}"
            maxLength={6}
            required
            value={code}
            aria-describedby="code-help"
            aria-invalid={error ? 'true' : undefined}
            onInput={(event) => setCode((event.target as HTMLInputElement).value)}
          />
          <div class="actions">
            <button type="submit" disabled={busy || !/^[0-9]{6}$/.test(code.trim())}>
              Confirm
            </button>
            <button type="button" class="secondary" onClick={() => void sendCode()} disabled={busy}>
              Send a new code
            </button>
          </div>
        </form>
      )}
      {error && (
        <p class="alert" role="alert">
          {error}
        </p>
      )}
      {busy && <p role="status">One moment…</p>}
    </Page>
  )
}

/** Re-renders when the session changes (a message arrives, a consent is answered, a message expires). */
function useSession(session: ChatSession): void {
  const [, setTick] = useState(0)
  useEffect(() => session.subscribe(() => setTick((t) => t + 1)), [session])
}

function Chat(props: { session: ChatSession }) {
  const { session } = props
  useSession(session)
  const [problem, setProblem] = useState<string | undefined>(undefined)
  const heading = useRef<HTMLHeadingElement>(null)
  const end = useRef<HTMLLIElement>(null)
  useEffect(() => {
    heading.current?.focus()
    session.start().catch((error: Error) => setProblem(error.message))
    return () => session.close()
  }, [session])
  const shown = session.history.length + session.messages.length
  useEffect(() => {
    // How soon the customer sees the conversation, and its first decrypted message (read by the browser tests).
    const mark = (name: string) => performance.getEntriesByName(name).length === 0 && performance.mark(name)
    if (shown > 0) mark('first-message')
    if (session.messages.length > 0) mark('first-secure-message')
  }, [shown])
  const channels = [
    ...new Set(session.history.map((m) => channelNames[m.channel as keyof typeof channelNames] ?? m.channel)),
  ]
  const cards = [...session.consents.values()]
  const readMark = session.readMark()
  // A consent card takes room from the log: keep its newest message in view then too, not only when one arrives.
  useEffect(() => end.current?.scrollIntoView({ block: 'end' }), [shown, cards.length])
  return (
    <div class="chat">
      <header class="chat-head">
        <div>
          <h1 ref={heading} tabIndex={-1}>
            Secure chat
          </h1>
          <p class="status">
            End-to-end encrypted
            {session.streamState !== 'open' && (
              <span> · {session.streamState === 'closed' ? 'offline' : 'connecting…'}</span>
            )}
          </p>
        </div>
        {/* In the header, beside the title: below the composer it took a line from the chat on a small phone. */}
        <ReportSuspicious session={session} />
      </header>
      {(problem ?? session.problem) && (
        <p class="alert banner" role="alert">
          {problem ?? session.problem}
        </p>
      )}
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling log must be reachable by keyboard (WCAG 2.1.1) */}
      <div class="log" role="log" aria-live="polite" aria-label="Messages" tabIndex={0}>
        <ol>
          {session.history.length > 0 && (
            <li class="divider earlier">
              <span>Earlier, on {channels.join(' and ')}</span>
            </li>
          )}
          {session.history.map((m) => (
            <HistoryItem key={m.id} message={m} />
          ))}
          <li class="divider secure">
            <span>Secure chat: only you and your bank can read what follows</span>
          </li>
          {secureTimeline(session.messages, cards).map((item) =>
            'seq' in item ? (
              <MessageItem key={item.seq} message={item} session={session} read={item.seq === readMark} />
            ) : (
              <ConsentEvent key={item.key} event={item} />
            ),
          )}
          <li ref={end} class="end" aria-hidden="true" />
        </ol>
      </div>
      <p class="typing" role="status">
        {session.indicators?.typing(session.conversationId) ? 'Your bank is typing…' : ''}
      </p>
      {cards.length > 0 && (
        <section class="consents" aria-labelledby="consents-heading">
          <h2 id="consents-heading">Payments to confirm</h2>
          <div aria-live="polite">
            {cards.map((card) => (
              <ConsentCardView key={card.consent.id} session={session} card={card} />
            ))}
          </div>
        </section>
      )}
      <MessageComposer
        id="message"
        className="composer"
        label="Message"
        help="Enter sends; Shift+Enter starts a new line."
        maxLength={4000}
        send={(text) => session.send(text)}
        typing={() => session.typed()}
        attach={{ send: (file) => session.sendAttachment(file) }}
        whyNotSent={(error) => `Not sent: ${(error as Error).message}`}
        waiting={
          session.joinState === 'joining'
            ? 'Setting up end-to-end encryption…'
            : session.joinState === 'waiting'
              ? 'Waiting for your bank to add this browser to the conversation…'
              : undefined
        }
      />
    </div>
  )
}

/**
 * Reporting a text or message that claimed to be the bank: the customer pastes it, and the bank's fraud team gets it
 * with the analysis of its links.
 */
function ReportSuspicious(props: { session: ChatSession }) {
  const [text, setText] = useState('')
  const [state, setState] = useState<{ kind: 'idle' | 'sending' | 'sent' } | { kind: 'failed'; why: string }>({
    kind: 'idle',
  })
  const submit = async (event: Event) => {
    event.preventDefault()
    setState({ kind: 'sending' })
    try {
      await props.session.client.reportSuspiciousMessage(text.trim())
      setText('')
      setState({ kind: 'sent' })
    } catch (error) {
      setState({ kind: 'failed', why: (error as Error).message })
    }
  }
  return (
    <details class="report">
      <summary>Report a scam message</summary>
      <form onSubmit={(event) => void submit(event)}>
        <label for="suspicious-text">The message you received, as it was (links included)</label>
        <textarea
          id="suspicious-text"
          maxLength={4096}
          rows={3}
          value={text}
          onInput={(event) => setText((event.target as HTMLTextAreaElement).value)}
        />
        <button type="submit" disabled={state.kind === 'sending' || text.trim() === ''}>
          Send report
        </button>
      </form>
      {state.kind === 'sent' && (
        <p role="status">Thank you: your report is with your bank’s fraud team. Do not open its links.</p>
      )}
      {state.kind === 'failed' && (
        <p class="alert" role="alert">
          Not sent: {state.why}
        </p>
      )}
    </details>
  )
}

function HistoryItem(props: { message: PublicMessage }) {
  const m = props.message
  const from = m.direction === 'inbound' ? 'You' : 'Bank'
  return (
    <li class={`message imported ${m.direction === 'inbound' ? 'from-you' : 'from-bank'}`}>
      <span class="meta">
        {from} · <time dateTime={m.at}>{time.format(new Date(m.at))}</time>
      </span>
      <p class="text">{m.text}</p>
      {m.masked.length > 0 && <p class="badge">Card or account details were hidden</p>}
    </li>
  )
}

function MessageItem(props: { message: ChatMessage; session: ChatSession; read: boolean }) {
  const m = props.message
  const attachment = m.attachment
  return (
    <li class={`message secure from-${m.from}`}>
      <span class="meta">
        {m.from === 'you' ? 'You' : 'Bank'} · <time dateTime={m.createdAt}>{time.format(new Date(m.createdAt))}</time>
      </span>
      {attachment ? (
        <AttachmentView attachment={attachment} open={() => props.session.openAttachment(attachment)} />
      ) : m.text !== undefined ? (
        <p class="text">{m.text}</p>
      ) : (
        <p class="placeholder">{m.placeholder}</p>
      )}
      {m.expiresAt && (
        <span class="expires">
          Disappears at <time dateTime={m.expiresAt}>{time.format(new Date(m.expiresAt))}</time>
        </span>
      )}
      {props.read && <span class="read-mark">Read</span>}
    </li>
  )
}

/** A payment request in the secure chat's timeline: when it was asked, and when it was answered or ran out. */
interface ConsentTimelineEvent {
  key: string
  at: string
  card: ConsentCard
  kind: 'asked' | 'answered'
}

/** The secure messages and the payment requests' events, in the order they happened. */
function secureTimeline(messages: readonly ChatMessage[], cards: readonly ConsentCard[]) {
  const events: (ChatMessage | ConsentTimelineEvent)[] = [...messages]
  for (const card of cards) {
    const { consent } = card
    events.push({ key: `asked-${consent.id}`, at: consent.createdAt, card, kind: 'asked' })
    const settledAt = consent.decidedAt ?? (consent.status === 'expired' ? consent.expiresAt : undefined)
    if (settledAt) events.push({ key: `answered-${consent.id}`, at: settledAt, card, kind: 'answered' })
  }
  const at = (e: ChatMessage | ConsentTimelineEvent) => ('seq' in e ? e.createdAt : e.at)
  return events.sort((a, b) => at(a).localeCompare(at(b)))
}

function ConsentEvent(props: { event: ConsentTimelineEvent }) {
  const { consent } = props.event.card
  const what = `${formatAmount(consent.amount)} to ${consent.payee.name}`
  const text =
    props.event.kind === 'asked'
      ? `${consent.bankName || 'Your bank'} asked you to confirm ${what}.`
      : consent.status === 'approved'
        ? `You approved ${what}.`
        : consent.status === 'declined'
          ? consent.fraudReported
            ? `You reported ${what} as not yours. Your bank was told.`
            : `You declined ${what}.`
          : `The request for ${what} expired.`
  return (
    <li class="timeline-event">
      <span class="meta">
        Payment · <time dateTime={props.event.at}>{time.format(new Date(props.event.at))}</time>
      </span>
      <p class="text">{text}</p>
    </li>
  )
}

const consentOutcome = {
  approved: 'Approved. Your bank received your signed confirmation.',
  declined: 'Declined. The payment will not be made.',
  expired: 'This request expired before it was answered.',
} as const

/** An IBAN (or account number) in groups of four, each kept whole on a line: "DE89 3704 0044 0532 0130 00". */
export function accountGroups(account: string): string[] {
  const compact = account.replace(/\s+/g, '')
  return /^[A-Z]{2}[0-9]{2}[A-Z0-9]+$/i.test(compact) ? (compact.match(/.{1,4}/g) ?? [compact]) : [account]
}

/** "4 min 20 s left", read from the request's expiry each second while it is open. */
function useTimeLeft(expiresAt: string, running: boolean): string {
  const [now, setNow] = useState(Date.now())
  useEffect(() => {
    if (!running) return
    const timer = setInterval(() => setNow(Date.now()), 1000)
    return () => clearInterval(timer)
  }, [running])
  const seconds = Math.max(0, Math.round((Date.parse(expiresAt) - now) / 1000))
  if (seconds >= 3600) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min left`
  return seconds >= 60 ? `${Math.floor(seconds / 60)} min ${seconds % 60} s left` : `${seconds} s left`
}

/** The steps of answering a card: the request as asked, checking before approving, or saying why it is declined. */
type CardStep = 'ask' | 'confirm' | 'decline'

function ConsentCardView(props: { session: ChatSession; card: ConsentCard }) {
  const { session, card } = props
  const { consent } = card
  const [code, setCode] = useState('')
  const [step, setStep] = useState<CardStep>('ask')
  const [blockPayee, setBlockPayee] = useState(true)
  const headingId = `consent-${consent.id}`
  const codeId = `consent-code-${consent.id}`
  const amount = formatAmount(consent.amount)
  const decided = card.state === 'approved' || card.state === 'declined' || card.state === 'expired'
  const timeLeft = useTimeLeft(consent.expiresAt, !decided)
  const bank = consent.bankName || 'Your bank'
  const busy = card.state === 'busy'
  const back = () => setStep('ask')
  return (
    <article class={`consent ${card.state}`} aria-labelledby={headingId}>
      <p class="consent-bank">{bank} asks you to confirm a payment</p>
      <h3 id={headingId}>Pay {amount}?</h3>
      <dl>
        <dt>Amount</dt>
        <dd class="amount">{amount}</dd>
        <dt>To</dt>
        <dd>
          <span class="payee">{consent.payee.name}</span>
          <span class="account">
            {accountGroups(consent.payee.account).map((group, i) => (
              <span key={`${i}-${group}`} class="account-group">
                {group}
              </span>
            ))}
          </span>
        </dd>
        <dt>Reference</dt>
        <dd>{consent.reference}</dd>
      </dl>
      {decided ? (
        <p class="outcome" role="status">
          {consent.fraudReported
            ? `Declined and reported. ${bank}’s fraud team has been told${consent.payeeBlocked ? `, and payments to ${consent.payee.name} are blocked` : ''}. If you are worried, call the number on the back of your card.`
            : consentOutcome[card.state as keyof typeof consentOutcome]}
        </p>
      ) : (
        <>
          <p class="time-left">
            <time dateTime={consent.expiresAt}>{timeLeft}</time> to answer
          </p>
          {card.needsCode && (
            <div class="code-form">
              <label for={codeId}>
                {card.needsCode === 'sms-otp' ? 'Code we sent you by text message' : 'Code from your authenticator app'}
              </label>
              <input
                id={codeId}
                inputMode="numeric"
                autocomplete="one-time-code"
                maxLength={6}
                value={code}
                onInput={(event) => setCode((event.target as HTMLInputElement).value)}
              />
            </div>
          )}
          {card.simSwapped && (
            <div class="sim-swapped">
              <p>
                Your phone’s SIM card was changed recently, so for your safety we cannot text you a code.
                {card.simSwapped.passkey
                  ? ' Approve with your passkey instead.'
                  : ' Approve it in your bank’s app, or call the number on the back of your card.'}
              </p>
              {card.simSwapped.passkey && (
                <button type="button" disabled={busy} onClick={() => void session.approveWithPasskey(consent.id)}>
                  Use my passkey
                </button>
              )}
            </div>
          )}
          {step === 'ask' && (
            <div class="actions">
              <button
                type="button"
                disabled={busy || (card.needsCode !== undefined && !/^[0-9]{6}$/.test(code))}
                onClick={() => setStep('confirm')}
              >
                Approve {amount}
              </button>
              <button type="button" class="secondary" disabled={busy} onClick={() => setStep('decline')}>
                Decline
              </button>
            </div>
          )}
          {step === 'confirm' && (
            <fieldset class="confirm-step">
              <legend>Check before you approve</legend>
              <p>
                You are paying <strong>{amount}</strong> to <strong>{consent.payee.name}</strong>. Only approve if you
                asked for this payment.
              </p>
              <div class="actions">
                <button
                  type="button"
                  disabled={busy}
                  onClick={() => void session.approve(consent.id, card.needsCode ? code : undefined).then(back)}
                >
                  Confirm and approve
                </button>
                <button type="button" class="secondary" disabled={busy} onClick={back}>
                  Back
                </button>
              </div>
            </fieldset>
          )}
          {step === 'decline' && (
            <fieldset class="decline-step">
              <legend>Decline this payment</legend>
              <p>Did you ask for this payment?</p>
              <div class="actions">
                <button
                  type="button"
                  class="secondary"
                  disabled={busy}
                  onClick={() => void session.decline(consent.id)}
                >
                  Decline, I changed my mind
                </button>
              </div>
              <p>If you did not ask for it, tell us: we warn {bank}’s fraud team at once.</p>
              <label class="check">
                <input
                  type="checkbox"
                  checked={blockPayee}
                  onChange={(event) => setBlockPayee((event.target as HTMLInputElement).checked)}
                />{' '}
                Also block payment requests to {consent.payee.name}
              </label>
              <div class="actions">
                <button
                  type="button"
                  class="danger"
                  disabled={busy}
                  onClick={() => void session.decline(consent.id, { notMe: true, blockPayee })}
                >
                  This wasn’t me
                </button>
                <button type="button" class="secondary" disabled={busy} onClick={back}>
                  Back
                </button>
              </div>
            </fieldset>
          )}
          {card.error && (
            <p class="alert" role="alert">
              {card.error}
            </p>
          )}
        </>
      )}
    </article>
  )
}

function Wiped() {
  return (
    <Page title="This browser was removed from your account">
      <p role="alert">
        Your bank, or you from another device, removed this browser. Everything the secure chat kept in it has been
        erased.
      </p>
      <p>You can close this page. To chat securely again, open a new link from your bank.</p>
    </Page>
  )
}
