import { channelNames } from '@strongroom/sdk'
import type { SimulatedConnector } from '@strongroom/sdk/simulator'
import {
  ChannelSimulator,
  type PhoneMessage,
  type SimulatedChannel,
  type WebhookSignature,
} from '@strongroom/sdk/simulator'
import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import { MessageComposer } from '../shared/MessageComposer.tsx'
import { PhoneThread, type ThreadState } from './phone-thread.ts'

const connectors: SimulatedConnector[] = ['twilio', 'whatsapp', 'messenger', 'rbm']

/** The demo customer's addresses (their phone number is on file at the Demo Bank); Messenger ids are page-scoped. */
const defaultPhones: Record<SimulatedConnector, string> = {
  twilio: '+447700900123',
  whatsapp: '447700900123',
  messenger: '7012345678901234',
  rbm: '+447700900123',
}

const phoneLabels: Record<SimulatedConnector, { label: string; help: string }> = {
  twilio: { label: 'Customer’s phone number', help: 'E.164, with the +.' },
  whatsapp: { label: 'Customer’s WhatsApp number', help: 'Digits only, country code first, no +.' },
  messenger: { label: 'Customer’s Messenger id', help: 'The page-scoped id Messenger gives the customer.' },
  rbm: { label: 'Customer’s phone number', help: 'E.164, with the +: RCS is addressed by number.' },
}

const bankLabels: Record<SimulatedConnector, string> = {
  twilio: 'Bank’s SMS number',
  whatsapp: 'Bank’s WhatsApp number id',
  messenger: 'Bank’s Facebook page id',
  rbm: 'Bank’s RBM agent id',
}

const threadStates: Record<ThreadState, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  retrying: 'Reconnecting…',
}

const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' })
const ADDRESS = /^\+?[0-9A-Za-z_-]{1,64}$/

/** Dev only: plays the customer's phone on the public channels, through the connectors' real webhook path. */
export function Simulator() {
  const simulator = useMemo(() => new ChannelSimulator({ baseUrl: location.origin }), [])
  const [channels, setChannels] = useState<SimulatedChannel[] | undefined>(undefined)
  const [loadError, setLoadError] = useState<string | undefined>(undefined)
  const [connector, setConnector] = useState<SimulatedConnector>('twilio')
  const [bank, setBank] = useState('')
  const [phone, setPhone] = useState(defaultPhones.twilio)
  const [signature, setSignature] = useState<WebhookSignature>('valid')

  useEffect(() => {
    simulator.channels().then(
      (found) => {
        setChannels(found)
        const first = found.find((c) => c.connector === 'twilio') ?? found[0]
        if (first) choose(first.connector, found)
      },
      () => setLoadError('The simulator could not be reached: is the server running in dev mode?'),
    )
  }, [simulator])

  const choose = (next: SimulatedConnector, known = channels ?? []) => {
    setConnector(next)
    setPhone(defaultPhones[next])
    setBank(known.find((c) => c.connector === next)?.address ?? '')
  }

  const banks = (channels ?? []).filter((c) => c.connector === connector)
  const phoneValid = ADDRESS.test(phone)
  return (
    <main class="simulator">
      <header class="simulator-intro">
        <h1>Channel simulator</h1>
        <p>
          Dev mode only. Plays a customer’s phone: what you send reaches the bank as the provider’s signed webhook, and
          what the bank sends back appears here.
        </p>
      </header>
      {loadError && (
        <p class="alert" role="alert">
          {loadError}
        </p>
      )}
      {channels?.length === 0 && (
        <p class="card">
          No public channel is configured. A fresh dev data directory gets the Demo Bank’s SMS, WhatsApp and Messenger
          channels on first start; otherwise configure one with <code>PUT /v1/channels/&lt;connector&gt;</code>.
        </p>
      )}
      <form class="phone-setup card" onSubmit={(event) => event.preventDefault()}>
        <fieldset class="channel-choice">
          <legend>Channel</legend>
          {connectors.map((c) => {
            const configured = (channels ?? []).some((known) => known.connector === c)
            return (
              <label key={c} class={`choice choice-${c}`}>
                <input
                  type="radio"
                  name="channel"
                  value={c}
                  checked={connector === c}
                  disabled={!configured}
                  onChange={() => choose(c)}
                />
                {channelNames[c]}
                {!configured && channels && <span class="visually-hidden"> (not configured)</span>}
              </label>
            )
          })}
        </fieldset>
        <div class="field">
          <label for="bank-address">{bankLabels[connector]}</label>
          <select
            id="bank-address"
            value={bank}
            disabled={banks.length === 0}
            onChange={(event) => setBank((event.target as HTMLSelectElement).value)}
          >
            {banks.map((c) => (
              <option key={c.address} value={c.address}>
                {c.address}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="phone-address">{phoneLabels[connector].label}</label>
          <input
            id="phone-address"
            value={phone}
            autocomplete="off"
            spellcheck={false}
            aria-describedby="phone-address-help"
            aria-invalid={phoneValid ? undefined : 'true'}
            onInput={(event) => setPhone((event.target as HTMLInputElement).value.trim())}
          />
          <p id="phone-address-help" class="help">
            {phoneLabels[connector].help} The Demo Customer’s number is {defaultPhones.twilio}.
          </p>
        </div>
        <div class="field">
          <label for="signature">Webhook signature</label>
          <select
            id="signature"
            value={signature}
            aria-describedby="signature-help"
            onChange={(event) => setSignature((event.target as HTMLSelectElement).value as WebhookSignature)}
          >
            <option value="valid">Valid (as the provider signs)</option>
            <option value="invalid">Invalid (a forgery)</option>
            <option value="missing">Missing</option>
          </select>
          <p id="signature-help" class="help">
            A forged or unsigned webhook is refused by the bank and stores nothing.
          </p>
        </div>
      </form>
      {bank && phoneValid ? (
        <Phone
          key={`${connector} ${bank} ${phone}`}
          simulator={simulator}
          connector={connector}
          bank={bank}
          verifiedSender={banks.find((c) => c.address === bank)?.verifiedSender}
          phone={phone}
          signature={signature}
        />
      ) : (
        channels &&
        channels.length > 0 && (
          <p class="card phone-placeholder">Choose a configured channel and a valid customer address.</p>
        )
      )}
    </main>
  )
}

function Phone(props: {
  simulator: ChannelSimulator
  connector: SimulatedConnector
  bank: string
  verifiedSender: string | undefined
  phone: string
  signature: WebhookSignature
}) {
  const { connector } = props
  const [, setTick] = useState(0)
  const thread = useMemo(
    () =>
      new PhoneThread(props.simulator, { connector, phone: props.phone, bank: props.bank }, () =>
        setTick((t) => t + 1),
      ),
    [],
  )
  useEffect(() => () => thread.stop(), [thread])
  const end = useRef<HTMLLIElement>(null)
  useEffect(() => end.current?.scrollIntoView({ block: 'end' }), [thread.messages.length])
  const name = channelNames[connector]
  return (
    <section class={`phone phone-${connector}`} aria-labelledby="phone-heading">
      <div class="phone-head">
        <h2 id="phone-heading">
          {name} with the bank <span class="phone-bank">{props.bank}</span>
        </h2>
        {props.verifiedSender && (
          // What an RCS phone shows above the bank's messages: the brand Google verified for the agent.
          <p class="phone-verified">
            {props.verifiedSender} <span class="verified-mark">Verified business</span>
          </p>
        )}
        <p class="phone-status" aria-live="polite">
          {threadStates[thread.state]}
        </p>
      </div>
      <div
        class="thread"
        role="log"
        aria-live="polite"
        aria-label={`Messages on ${name}`}
        // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region takes focus to scroll by keyboard (WCAG 2.1.1), as a thread may hold no link
        tabIndex={0}
      >
        {thread.messages.length === 0 ? (
          <p class="thread-empty">{thread.state === 'live' ? 'No messages yet: write to the bank below.' : ''}</p>
        ) : (
          <ol class="message-list">
            {thread.messages.map((m) => (
              <Bubble key={m.seq} message={m} />
            ))}
            <li ref={end} class="end" aria-hidden="true" />
          </ol>
        )}
      </div>
      <PhoneComposer thread={thread} signature={props.signature} channelName={name} />
    </section>
  )
}

const SAFE_LINK = /^https?:\/\//

/** The text with its web addresses as links, the way phones make them tappable (SMS carries the pivot link so). */
function Linkified(props: { text: string }) {
  const parts = props.text.split(/(https?:\/\/\S+)/)
  return (
    <>
      {parts.map((part, i) =>
        i % 2 === 1 ? (
          <a key={i} href={part} target="_blank" rel="noopener noreferrer">
            {part}
          </a>
        ) : (
          part
        ),
      )}
    </>
  )
}

function webhookAnswer(status: number | null): string {
  if (status === null) return 'Sending…'
  if (status >= 200 && status < 300) return 'Received by the bank'
  if (status === 401) return 'Refused by the bank: bad or missing signature'
  return `The bank answered ${status}`
}

function Bubble(props: { message: PhoneMessage }) {
  const m = props.message
  const fromPhone = m.direction === 'from-phone'
  const refused = fromPhone && m.webhookStatus !== null && (m.webhookStatus < 200 || m.webhookStatus >= 300)
  return (
    <li class={`bubble ${fromPhone ? 'mine' : 'theirs'}${refused ? ' refused' : ''}`}>
      <span class="bubble-who">{fromPhone ? 'You' : 'Bank'}</span>
      <p class="bubble-text">
        <Linkified text={m.text} />
      </p>
      {m.link && SAFE_LINK.test(m.link.url) && (
        <a class="cta" href={m.link.url} target="_blank" rel="noopener noreferrer">
          {m.link.label}
        </a>
      )}
      <span class="bubble-meta">
        <time dateTime={m.at}>{time.format(new Date(m.at))}</time>
        {fromPhone && ` · ${webhookAnswer(m.webhookStatus)}`}
      </span>
    </li>
  )
}

function PhoneComposer(props: { thread: PhoneThread; signature: WebhookSignature; channelName: string }) {
  return (
    <MessageComposer
      id="phone-text"
      className="phone-composer"
      label={`Message to the bank by ${props.channelName}`}
      help="Enter sends; Shift+Enter starts a new line. Try a card number such as 4111 1111 1111 1111: the bank masks it."
      maxLength={4096}
      send={(text) => props.thread.send(text, props.signature)}
      whyNotSent={(error) => `Not sent: ${(error as Error).message}`}
    />
  )
}
