import type { ConversationStatus } from '@strongroom/sdk'
import { useEffect, useState } from 'preact/hooks'
import type { Suggestion } from '../shared/MessageComposer.tsx'
import { ArchiveHits } from './ArchiveHits.tsx'
import './desk.css'
import { type CannedReply, type ConversationNote, matchingReplies, type SearchPage } from './desk.ts'
import { OutreachPanel } from './OutreachPanel.tsx'
import { channelKeyLabels, channelKeyOf } from './PublicChannel.tsx'
import type { ConsoleSession, InboxEntry } from './session.ts'

const dayAndTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' })

export const statusLabels: Record<ConversationStatus, string> = {
  open: 'Open',
  pending: 'Pending',
  resolved: 'Resolved',
}

/** The channels a customer's conversations are on, each once, as small labels. */
export function ChannelIcons(props: { session: ConsoleSession; entries: readonly InboxEntry[] }) {
  const keys = [...new Set(props.entries.map((e) => channelKeyOf(props.session, e.conversation.id)))]
  return (
    <span class="channel-icons">
      {keys.map((key) => (
        <span key={key} class={`channel-icon channel-${key}`}>
          {channelKeyLabels[key]}
        </span>
      ))}
    </span>
  )
}

/** Beside the conversation's name: its status, and the buttons that change it. */
export function StatusControl(props: { session: ConsoleSession; entry: InboxEntry }) {
  const { session, entry } = props
  const [problem, setProblem] = useState<string | undefined>(undefined)
  const { status, id } = entry.conversation
  const set = (next: ConversationStatus) => {
    setProblem(undefined)
    session.setStatus(id, next).catch(() => setProblem('The status could not be changed. Try again.'))
  }
  const offered: ConversationStatus[] = status === 'open' ? ['pending', 'resolved'] : ['open']
  const verbs: Record<ConversationStatus, string> = { open: 'Reopen', pending: 'Mark pending', resolved: 'Resolve' }
  if (!session.can('conversations:write'))
    return <span class={`status-badge status-${status}`}>{statusLabels[status]}</span>
  return (
    <div class="status-control">
      <span class={`status-badge status-${status}`} role="status">
        {statusLabels[status]}
      </span>
      {offered.map((next) => (
        <button key={next} type="button" class="secondary" onClick={() => set(next)}>
          {verbs[next]}
        </button>
      ))}
      {problem && <span class="note-problem">{problem}</span>}
    </div>
  )
}

/** Internal notes on the conversation: for staff only, never sent to the customer. */
export function NotesPanel(props: { session: ConsoleSession; conversationId: string }) {
  const { session, conversationId } = props
  const [notes, setNotes] = useState<ConversationNote[] | undefined>(undefined)
  const [text, setText] = useState('')
  const [problem, setProblem] = useState<string | undefined>(undefined)
  useEffect(() => {
    session.desk.notes(conversationId).then(setNotes, () => setNotes([]))
  }, [session, conversationId])
  const add = async (event: Event) => {
    event.preventDefault()
    const body = text.trim()
    if (!body) return
    setProblem(undefined)
    try {
      const note = await session.desk.addNote(conversationId, body)
      setNotes([...(notes ?? []), note])
      setText('')
    } catch {
      setProblem('The note was not saved. Try again.')
    }
  }
  return (
    <section class="panel notes" aria-labelledby="notes-heading">
      <h2 id="notes-heading">Internal notes</h2>
      <p class="help">Only bank staff see these. They are never sent to the customer.</p>
      {notes === undefined ? (
        <p>Loading notes…</p>
      ) : notes.length === 0 ? (
        <p>No notes yet.</p>
      ) : (
        <ol class="note-list">
          {notes.map((note) => (
            <li key={note.id} class="note">
              <span class="meta">
                {note.authorStaffId === session.me.staffId ? 'You' : 'A colleague'} ·{' '}
                <time dateTime={note.createdAt}>{dayAndTime.format(new Date(note.createdAt))}</time>
              </span>
              <p>{note.text}</p>
            </li>
          ))}
        </ol>
      )}
      {session.can('conversations:write') && (
        <form onSubmit={(event) => void add(event)}>
          <label for="note-text">Add a note</label>
          <textarea
            id="note-text"
            rows={2}
            maxLength={4000}
            value={text}
            onInput={(event) => setText((event.target as HTMLTextAreaElement).value)}
          />
          {problem && <p class="note-problem">{problem}</p>}
          <button type="submit" class="secondary" disabled={text.trim() === ''}>
            Save note
          </button>
        </form>
      )}
    </section>
  )
}

/** The bank's canned replies as the composer offers them after "/". */
export function useCannedReplies(session: ConsoleSession): (draft: string) => Suggestion[] {
  const [replies, setReplies] = useState<CannedReply[]>([])
  useEffect(() => {
    if (session.can('conversations:write')) void session.desk.cannedReplies().then(setReplies)
  }, [session])
  return (draft) =>
    matchingReplies(replies, draft).map((r) => ({ key: r.id, label: `/${r.shortcut} · ${r.title}`, text: r.text }))
}

const matchLabels = { name: 'name', phone: 'phone number', text: 'message text' } as const

/**
 * Finds customers by name, phone number or a word they wrote on a public channel; a result opens the customer's
 * timeline. While a search is shown, it stands in for the inbox list.
 */
export function SearchBox(props: { session: ConsoleSession; onResults: (shown: boolean) => void }) {
  const { session } = props
  const [query, setQuery] = useState('')
  const [page, setPage] = useState<{ q: string; hits: SearchPage['hits']; next: number | null } | undefined>()
  const [problem, setProblem] = useState<string | undefined>(undefined)
  const run = async (q: string, offset: number) => {
    setProblem(undefined)
    try {
      const found = await session.desk.search(q, offset)
      await session.addConversations(found.hits.flatMap((h) => h.conversationIds))
      setPage({ q, hits: offset === 0 ? found.hits : [...(page?.hits ?? []), ...found.hits], next: found.next })
      props.onResults(true)
    } catch {
      setProblem('Type a name, a phone number with its country code (+44…), or words the customer wrote.')
    }
  }
  const clear = () => {
    setQuery('')
    setPage(undefined)
    setProblem(undefined)
    props.onResults(false)
  }
  return (
    <search class="search">
      <form
        onSubmit={(event) => {
          event.preventDefault()
          if (query.trim()) void run(query.trim(), 0)
        }}
      >
        <label for="search-query">Find a customer</label>
        <div class="search-row">
          <input
            id="search-query"
            type="search"
            value={query}
            placeholder="Name, +44… or words they wrote"
            onInput={(event) => setQuery((event.target as HTMLInputElement).value)}
            aria-describedby={problem ? 'search-problem' : undefined}
          />
          <button type="submit">Search</button>
        </div>
      </form>
      {problem && (
        <p id="search-problem" class="help">
          {problem}
        </p>
      )}
      {page && (
        <section class="search-results" aria-labelledby="search-results-heading">
          <div class="search-results-head">
            <h3 id="search-results-heading" aria-live="polite">
              {page.hits.length > 0
                ? `Found for “${page.q}”`
                : session.can('archive:read')
                  ? `No customer or public message matches “${page.q}”`
                  : `Nothing found for “${page.q}”`}
            </h3>
            <button type="button" class="secondary" onClick={clear}>
              Clear search
            </button>
          </div>
          <ul class="hit-list">
            {page.hits.map((hit) => {
              const entries = hit.conversationIds.flatMap((id) => session.entries.get(id) ?? [])
              const first = entries[0]
              if (!first) {
                return hit.customerId && session.can('conversations:write') ? (
                  <li key={hit.customerId}>
                    <UnwrittenCustomer
                      session={session}
                      customerId={hit.customerId}
                      onStarted={(started) => {
                        // The customer has a conversation now: the inbox shows it, open.
                        clear()
                        void session.open(started)
                      }}
                    />
                  </li>
                ) : null
              }
              return (
                <li key={hit.customerId ?? first.conversation.id}>
                  <button type="button" class="inbox-item hit" onClick={() => void session.open(first.conversation.id)}>
                    <span class="who">{first.customerName}</span>
                    <ChannelIcons session={session} entries={entries} />
                    <span class="matched">Matched {hit.matched.map((m) => matchLabels[m]).join(' and ')}</span>
                  </button>
                </li>
              )
            })}
          </ul>
          {page.next !== null && (
            <button type="button" class="secondary" onClick={() => void run(page.q, page.next as number)}>
              More results
            </button>
          )}
          {session.can('archive:read') && <ArchiveHits session={session} q={page.q} />}
        </section>
      )}
    </search>
  )
}

/**
 * A customer search found who has no conversation the agent sees: their name, and the way to write to them first
 * (the conversation then opens in the inbox).
 */
function UnwrittenCustomer(props: {
  session: ConsoleSession
  customerId: string
  onStarted: (conversationId: string) => void
}) {
  const { session, customerId } = props
  const [name, setName] = useState<string | undefined>(undefined)
  const [writing, setWriting] = useState(false)
  useEffect(() => {
    void session.client.getCustomer(customerId).then(
      (c) => setName(c.displayName),
      () => setName('Customer'),
    )
  }, [customerId])
  if (name === undefined) return null
  return (
    <div class="hit unwritten">
      <p>
        <span class="who">{name}</span> <span class="matched">No conversation yet</span>
      </p>
      {writing ? (
        <OutreachPanel session={session} customerId={customerId} customerName={name} onStarted={props.onStarted} />
      ) : (
        <button type="button" class="secondary" onClick={() => setWriting(true)}>
          Write to {name}
        </button>
      )}
    </div>
  )
}

/** The unread count in the tab's title, and desktop notifications once the agent turned them on. */
export function useAttention(session: ConsoleSession): void {
  const unread = session.unreadTotal()
  useEffect(() => {
    document.title = unread > 0 ? `(${unread}) Agent console` : 'Agent console'
  }, [unread])
  useEffect(() => {
    session.onCustomerMessage = (entry) => {
      if (!('Notification' in window) || Notification.permission !== 'granted' || !document.hidden) return
      // The customer's name and channel only: a message's text stays out of the operating system's notifications.
      const channel = channelKeyLabels[channelKeyOf(session, entry.conversation.id)]
      new Notification(`New message from ${entry.customerName}`, { body: `On ${channel}`, tag: entry.conversation.id })
    }
    return () => {
      session.onCustomerMessage = undefined
    }
  }, [session])
}

/** Asks for permission to show desktop notifications, on the agent's click (browsers ask only on a gesture). */
export function NotificationsButton() {
  const supported = typeof window !== 'undefined' && 'Notification' in window
  const [permission, setPermission] = useState(supported ? Notification.permission : 'denied')
  if (!supported || permission === 'granted') return null
  return (
    <button
      type="button"
      class="secondary"
      disabled={permission === 'denied'}
      title={permission === 'denied' ? 'Notifications are blocked in this browser’s site settings' : undefined}
      onClick={() => void Notification.requestPermission().then(setPermission)}
    >
      Turn on notifications
    </button>
  )
}
