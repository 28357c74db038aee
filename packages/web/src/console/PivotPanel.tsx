import { channelNames, type PivotLink, problemKind } from '@strongroom/sdk'
import { useEffect, useState } from 'preact/hooks'
import type { ConsoleSession } from './session.ts'

/** How often the delivery of the bank's texts is asked for while some are still on their way (receipts come later). */
const DELIVERY_POLL_MS = 3000

const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' })

const stateLabels: Record<PivotLink['status'], string> = {
  sent: 'Sent',
  opened: 'Opened',
  completed: 'Used',
  expired: 'Expired',
  revoked: 'Replaced',
}

const stateHelp: Record<PivotLink['status'], (link: PivotLink) => string> = {
  sent: (link) => `${sentBy(link)}; the customer has not opened it yet. It works until ${until(link)}.`,
  opened: (link) => `${sentBy(link)}; the customer opened it. It works until ${until(link)}.`,
  completed: () => 'The customer is in the secure chat.',
  expired: () => 'Not used in time. Send a new link if the customer still needs it.',
  revoked: () => 'A newer link to this customer replaced it.',
}

const until = (link: PivotLink) => time.format(new Date(link.expiresAt))
const sentBy = (link: PivotLink) =>
  `${link.createdBy.kind === 'system' ? 'Sent automatically after card details were hidden' : 'Sent'} at ${time.format(new Date(link.createdAt))}`

function whyNoPivot(error: unknown): string {
  const type = problemKind(error)
  if (type === 'channels/customer-unknown') {
    return 'No link sent: this sender is not linked to a customer yet. Link them to a customer first.'
  }
  if (type === 'channels/outside-service-window') {
    return 'No link sent: WhatsApp allows messages only within 24 hours of the customer’s last message. Wait for the customer to write, or use an approved template.'
  }
  return `No link sent: ${(error as Error).message}. Try again in a moment.`
}

/**
 * "Move to secure chat" for a public conversation: one live link at a time, whether DLP sent it automatically or an
 * agent did. The link's state (sent, opened, used, expired) arrives on the stream; once used, the secure conversation
 * opens, where the public history sits above one divider. Before sending, the agent is warned when the customer's
 * SIM card was swapped recently (a link to that number may reach someone else).
 */
export function PivotPanel(props: { session: ConsoleSession; conversationId: string }) {
  const { session, conversationId } = props
  const [links, setLinks] = useState<PivotLink[] | undefined>(undefined)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | undefined>(undefined)
  const [simSwap, setSimSwap] = useState<{ swapped: boolean; windowHours: number } | undefined>(undefined)
  const channel = session.publicChannels.of(conversationId)
  const customerId = session.entries.get(conversationId)?.conversation.customerId ?? null

  const refresh = async () => {
    const fresh = await session.client.listPivotLinks(conversationId)
    setLinks(fresh)
    const moved = fresh.find((link) => link.secureConversationId !== null)?.secureConversationId
    if (moved && session.publicChannels.of(conversationId)?.secureConversationId !== moved) {
      await session.publicChannels.learn([conversationId])
    }
  }

  useEffect(() => {
    void refresh().catch((e: Error) => setError(`The link’s state could not be read: ${e.message}. Reload the page.`))
    const stop = session.onPivotChange((changed) => {
      if (changed === conversationId) void refresh().catch(() => undefined)
    })
    // Delivery receipts come from the provider after the text: asked for only while some are on their way.
    const deliveries = setInterval(() => {
      void session.publicChannels
        .refreshDeliveries(conversationId, session.messages.get(conversationId) ?? [])
        .catch(() => undefined)
    }, DELIVERY_POLL_MS)
    return () => {
      stop()
      clearInterval(deliveries)
    }
  }, [conversationId])

  useEffect(() => {
    if (customerId) void session.simSwap(customerId).then(setSimSwap)
  }, [customerId])

  const invite = async (replace: boolean) => {
    setBusy(true)
    setError(undefined)
    try {
      await session.client.invitePivot(conversationId, replace ? { replace } : {})
      await refresh()
    } catch (e) {
      setError(whyNoPivot(e))
    } finally {
      setBusy(false)
    }
  }

  const latest = links?.[0]
  const live = latest && (latest.status === 'sent' || latest.status === 'opened') ? latest : undefined
  useEffect(() => {
    // A link runs out without a word from the server: read again at its expiry.
    if (!live) return
    const timer = setTimeout(
      () => void refresh().catch(() => undefined),
      Math.max(0, Math.min(Date.parse(live.expiresAt) - Date.now() + 500, 2 ** 31 - 1)),
    )
    return () => clearTimeout(timer)
  }, [live?.id, live?.expiresAt])
  const secureId = links?.find((link) => link.status === 'completed')?.secureConversationId ?? null
  const where = channel?.kind === 'public' ? channelNames[channel.connector] : 'the public channel'
  return (
    <section class="pivot" aria-labelledby="pivot-heading">
      <h3 id="pivot-heading" class="visually-hidden">
        Secure channel
      </h3>
      {simSwap?.swapped && (
        <p class="alert warning" role="alert">
          This customer’s SIM card was changed in the last {simSwap.windowHours} hours: a text to their number may reach
          someone else. Confirm who you are talking to before you send a link.
        </p>
      )}
      <div class="pivot-row">
        {!live && (
          <button
            type="button"
            onClick={() => void invite(false)}
            disabled={busy}
            aria-describedby={channel?.customerLinked === false ? 'pivot-help' : undefined}
          >
            {busy ? 'Sending link…' : latest ? 'Send a new secure link' : 'Move to secure channel'}
          </button>
        )}
        <p class="pivot-state" aria-live="polite">
          {latest ? (
            <>
              Secure link on {where}:{' '}
              <strong class={`link-state state-${latest.status}`} data-state={latest.status}>
                {stateLabels[latest.status]}
              </strong>{' '}
              <span class="help">{stateHelp[latest.status](latest)}</span>
            </>
          ) : links ? (
            'No secure link sent yet.'
          ) : (
            ''
          )}
        </p>
        {live && (
          <button type="button" class="secondary" onClick={() => void invite(true)} disabled={busy}>
            {busy ? 'Sending link…' : 'Replace with a new link'}
          </button>
        )}
      </div>
      {channel?.customerLinked === false && (
        <p id="pivot-help" class="help">
          This sender is not linked to a customer: link them first, since only a known customer’s device can use the
          link.
        </p>
      )}
      {secureId && (
        <p class="pivot-moved">
          {session.entries.has(secureId) ? (
            <button type="button" class="secondary" onClick={() => void session.open(secureId)}>
              Open the secure conversation
            </button>
          ) : (
            'The secure conversation will appear in your inbox.'
          )}
        </p>
      )}
      {error && (
        <p class="alert" role="alert">
          {error}
        </p>
      )}
    </section>
  )
}
