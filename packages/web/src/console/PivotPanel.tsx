import { type PivotLink, StrongroomError } from '@strongroom/sdk'
import { useEffect, useState } from 'preact/hooks'
import type { ConsoleSession } from './session.ts'

/** How often the link's state (and the replies' delivery) is asked for while the conversation is open. */
const POLL_MS = 3000

const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' })

const stateLabels: Record<PivotLink['status'], string> = {
  sent: 'Sent',
  opened: 'Opened',
  completed: 'Completed',
  expired: 'Expired',
  revoked: 'Replaced',
}

const stateHelp: Record<PivotLink['status'], (link: PivotLink) => string> = {
  sent: (link) => `waiting for the customer; valid until ${time.format(new Date(link.expiresAt))}`,
  opened: (link) => `the customer opened it; valid until ${time.format(new Date(link.expiresAt))}`,
  completed: () => 'the customer is in the secure channel',
  expired: () => 'not used in time; send a new one if the customer still needs it',
  revoked: () => 'a newer link to this customer replaced it',
}

function whyNoPivot(error: unknown): string {
  const type = error instanceof StrongroomError ? error.type.split('/problems/')[1] : undefined
  if (type === 'channels/customer-unknown') {
    return 'No link sent: this sender is not linked to a customer yet, and a link works only for a known customer.'
  }
  if (type === 'channels/outside-service-window') {
    return 'No link sent: WhatsApp allows messages only within 24 hours of the customer’s last message.'
  }
  return `No link sent: ${(error as Error).message}`
}

/**
 * "Move to secure channel" for a public conversation: sends the customer a single-use link and follows its state
 * (sent, opened, completed, expired) by asking the server every few seconds; once completed, opens the secure
 * conversation, where the public history sits above a divider.
 */
export function PivotPanel(props: { session: ConsoleSession; conversationId: string }) {
  const { session, conversationId } = props
  const [links, setLinks] = useState<PivotLink[] | undefined>(undefined)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | undefined>(undefined)
  const channel = session.publicChannels.of(conversationId)

  const refresh = async () => {
    const fresh = await session.client.listPivotLinks(conversationId)
    setLinks(fresh)
    const moved = fresh.find((link) => link.secureConversationId !== null)?.secureConversationId
    if (moved && session.publicChannels.of(conversationId)?.secureConversationId !== moved) {
      await session.publicChannels.learn([conversationId])
    }
    await session.publicChannels.refreshDeliveries(conversationId, session.messages.get(conversationId) ?? [])
  }

  useEffect(() => {
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const tick = async () => {
      // A failed poll is retried at the next one; the stream's state tells the agent when the server is away.
      await refresh().catch(() => undefined)
      if (!stopped) timer = setTimeout(tick, POLL_MS)
    }
    void tick()
    return () => {
      stopped = true
      clearTimeout(timer)
    }
  }, [conversationId])

  const invite = async () => {
    setBusy(true)
    setError(undefined)
    try {
      await session.client.invitePivot(conversationId)
      await refresh()
    } catch (e) {
      setError(whyNoPivot(e))
    } finally {
      setBusy(false)
    }
  }

  const latest = links?.[0]
  const secureId = links?.find((link) => link.status === 'completed')?.secureConversationId ?? null
  return (
    <section class="pivot" aria-labelledby="pivot-heading">
      <h3 id="pivot-heading" class="visually-hidden">
        Secure channel
      </h3>
      <div class="pivot-row">
        <button
          type="button"
          onClick={() => void invite()}
          disabled={busy}
          aria-describedby={channel?.customerLinked === false ? 'pivot-help' : undefined}
        >
          {busy ? 'Sending link…' : 'Move to secure channel'}
        </button>
        <p class="pivot-state" aria-live="polite">
          {latest ? (
            <>
              Secure link:{' '}
              <strong class={`link-state state-${latest.status}`} data-state={latest.status}>
                {stateLabels[latest.status]}
              </strong>{' '}
              <span class="help">({stateHelp[latest.status](latest)})</span>
            </>
          ) : links ? (
            'No secure link sent yet.'
          ) : (
            ''
          )}
        </p>
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
