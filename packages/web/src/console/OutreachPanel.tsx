import { type CustomerChannel, channelNames, type PublicChannelConnector, problemKind } from '@strongroom/sdk'
import { useEffect, useId, useState } from 'preact/hooks'
import './outreach.css'
import type { ConsoleSession } from './session.ts'

/** What the agent is told before choosing a channel: which window the first message falls in, in words. */
function windowNote(channel: CustomerChannel): string | undefined {
  const name = channelNames[channel.connector]
  if (channel.window.kind === 'template') {
    return channel.templates.length > 0
      ? `More than 24 hours since they last wrote on ${name} (or never): it goes out as the bank’s approved template.`
      : `More than 24 hours since they last wrote on ${name}: no approved template is registered, so nothing can be sent.`
  }
  if (channel.window.kind === 'closed') return `Nothing can be sent on ${name} now: ${channel.window.reason}.`
  if (channel.window.kind === 'human-agent') return `${name}: your message goes out tagged as an agent’s answer.`
  return undefined
}

function whyNotSent(error: unknown, what: string): string {
  const type = problemKind(error)
  if (type === 'channels/sensitive-data') return `${what}: card or account numbers may not be sent here.`
  const detail = (error as { problem?: { detail?: string } }).problem?.detail
  return `${what}: ${detail ?? (error as Error).message}.`
}

/**
 * Writing to a customer first, without waiting for them to write: a new conversation on a channel they have (their
 * number's SMS or WhatsApp, their Messenger conversation), or a secure link there. The agent is warned first when the
 * customer's SIM card was swapped recently, since a text to that number may reach someone else.
 */
export function OutreachPanel(props: {
  session: ConsoleSession
  customerId: string
  customerName: string
  /** Called with the conversation the message or link went to, once it was sent. */
  onStarted?: ((conversationId: string) => void) | undefined
}) {
  const { session, customerId } = props
  const ids = useId()
  const [channels, setChannels] = useState<CustomerChannel[] | { error: string } | undefined>(undefined)
  const [connector, setConnector] = useState<PublicChannelConnector | undefined>(undefined)
  const [text, setText] = useState('')
  const [busy, setBusy] = useState(false)
  const [outcome, setOutcome] = useState<{ ok: boolean; text: string } | undefined>(undefined)
  const [simSwap, setSimSwap] = useState<{ swapped: boolean; windowHours: number } | undefined>(undefined)

  const load = () =>
    session.client.customerPublicChannels(customerId).then(
      (found) => {
        setChannels(found)
        setConnector((chosen) => chosen ?? found.find((c) => c.unreachable === null)?.connector)
      },
      (e: Error) => setChannels({ error: e.message }),
    )
  useEffect(() => {
    void load()
    void session.simSwap(customerId).then(setSimSwap)
  }, [customerId])

  const list = Array.isArray(channels) ? channels : []
  const chosen = list.find((c) => c.connector === connector)
  const blocked = !chosen || chosen.unreachable !== null || chosen.window.kind === 'closed'
  const noTemplate = (purpose: 'message' | 'pivot') =>
    chosen?.window.kind === 'template' && !chosen.templates.includes(purpose)

  /** Runs a send; `action` answers with the conversation it went to and what to tell the agent. */
  const act = async (what: string, action: () => Promise<{ conversationId: string; said: string }>) => {
    setBusy(true)
    setOutcome(undefined)
    try {
      const { conversationId, said } = await action()
      setOutcome({ ok: true, text: said })
      setText('')
      await session.addConversations([conversationId])
      void load()
      props.onStarted?.(conversationId)
    } catch (e) {
      setOutcome({ ok: false, text: whyNotSent(e, what) })
    } finally {
      setBusy(false)
    }
  }
  const where = chosen ? channelNames[chosen.connector] : ''
  const send = (event: Event) => {
    event.preventDefault()
    if (!chosen || !text.trim()) return
    void act('Not sent', async () => {
      const sent = await session.client.startPublicConversation(customerId, {
        connector: chosen.connector,
        text: text.trim(),
      })
      return { conversationId: sent.conversationId, said: `Sent to ${props.customerName} by ${where}.` }
    })
  }
  const sendLink = () => {
    if (!chosen) return
    void act('No link sent', async () => {
      const sent = await session.client.sendSecureLink(customerId, { connector: chosen.connector })
      const said = sent.message
        ? `Secure link sent to ${props.customerName} by ${where}.`
        : 'A secure link sent earlier is still live: it was not sent again.'
      return { conversationId: sent.conversationId, said }
    })
  }

  return (
    <section class="panel outreach" aria-labelledby={`${ids}-heading`}>
      <h2 id={`${ids}-heading`}>Write to {props.customerName}</h2>
      {channels === undefined && <p class="help">Loading their channels…</p>}
      {channels && 'error' in channels && (
        <p class="alert" role="alert">
          Their channels could not be loaded: {channels.error}
        </p>
      )}
      {Array.isArray(channels) && channels.length === 0 && <p class="help">The bank has no public channel set up.</p>}
      {simSwap?.swapped && (
        <p class="alert warning" role="alert">
          This customer’s SIM card was changed in the last {simSwap.windowHours} hours: a text to their number may reach
          someone else. Confirm who you are talking to before you send a link.
        </p>
      )}
      {list.length > 0 && (
        <form onSubmit={send}>
          <fieldset class="outreach-channels">
            <legend>Channel</legend>
            {list.map((channel) => (
              <div key={channel.connector} class="choice">
                <input
                  type="radio"
                  id={`${ids}-${channel.connector}`}
                  name={`${ids}-channel`}
                  value={channel.connector}
                  checked={channel.connector === connector}
                  disabled={channel.unreachable !== null}
                  aria-describedby={channel.unreachable ? `${ids}-${channel.connector}-why` : undefined}
                  onChange={() => setConnector(channel.connector)}
                />
                <label for={`${ids}-${channel.connector}`}>{channelNames[channel.connector]}</label>
                {channel.unreachable && (
                  <span id={`${ids}-${channel.connector}-why`} class="help">
                    {' '}
                    (not possible: {channel.unreachable})
                  </span>
                )}
              </div>
            ))}
          </fieldset>
          {chosen && windowNote(chosen) && (
            <p class="help" id={`${ids}-window`}>
              {windowNote(chosen)}
            </p>
          )}
          <label for={`${ids}-text`}>Message</label>
          <textarea
            id={`${ids}-text`}
            rows={3}
            maxLength={4096}
            value={text}
            aria-describedby={chosen && windowNote(chosen) ? `${ids}-window` : undefined}
            onInput={(event) => setText((event.target as HTMLTextAreaElement).value)}
          />
          <div class="actions">
            <button type="submit" disabled={busy || blocked || noTemplate('message') || !text.trim()}>
              New conversation
            </button>
            <button
              type="button"
              class="secondary"
              disabled={busy || blocked || noTemplate('pivot')}
              onClick={sendLink}
            >
              Send secure link
            </button>
          </div>
        </form>
      )}
      <p class={outcome && !outcome.ok ? 'alert' : 'help'} role="status">
        {outcome?.text}
      </p>
    </section>
  )
}
