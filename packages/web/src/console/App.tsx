import { StrongroomError } from '@strongroom/sdk'
import { Fragment } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import { MessageComposer } from '../shared/MessageComposer.tsx'
import { Compliance } from './Compliance.tsx'
import { ConversationTools } from './ConversationTools.tsx'
import {
  ChannelIcons,
  NotificationsButton,
  SearchBox,
  StatusControl,
  statusLabels,
  useAttention,
  useCannedReplies,
} from './Desk.tsx'
import { InboxFilters, noFilter, passesFilter } from './InboxFilters.tsx'
import { PivotPanel } from './PivotPanel.tsx'
import {
  ChannelBadge,
  ChannelOrigin,
  channelKeyLabels,
  channelKeyOf,
  channelNameOf,
  PublicMessageDetails,
  replyLabel,
  SecureDivider,
  securePartStartsAt,
} from './PublicChannel.tsx'
import { whyNotSent } from './public-channels.ts'
import { ConsoleSession, type InboxEntry, type ShownMessage, SignInRefused } from './session.ts'
import { VirtualList } from './VirtualList.tsx'

const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' })
const dayAndTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' })

/** Re-renders when the session changes (a message arrives, the stream reconnects). */
function useSession(session: ConsoleSession): void {
  const [, setTick] = useState(0)
  useEffect(() => session.subscribe(() => setTick((t) => t + 1)), [session])
}

export function App() {
  const [session, setSession] = useState<ConsoleSession | undefined>(undefined)
  if (!session) return <SignIn onSignedIn={setSession} />
  return (
    <Console
      session={session}
      onSignOut={() => {
        session.close()
        setSession(undefined)
      }}
    />
  )
}

/** The bank (tenant) a passkey signs in to: from the console link the bank gives its staff (`?tenant=ten_…`). */
const tenantOfPage = () => new URLSearchParams(location.search).get('tenant') ?? ''

function SignIn(props: { onSignedIn: (session: ConsoleSession) => void }) {
  const [error, setError] = useState<{ form: 'passkey' | 'token'; message: string } | undefined>(undefined)
  const [busy, setBusy] = useState(false)
  const bank = useRef<HTMLInputElement>(null)
  const input = useRef<HTMLInputElement>(null)
  const passkeyButton = useRef<HTMLButtonElement>(null)
  // The passkey is the way in: its button has focus when the link named the bank, else the bank ID field.
  useEffect(() => (bank.current?.value ? passkeyButton.current : bank.current)?.focus(), [])
  const signIn = async (form: 'passkey' | 'token', open: () => Promise<ConsoleSession>) => {
    setBusy(true)
    setError(undefined)
    try {
      const session = await open()
      if (input.current) input.current.value = ''
      await session.start()
      props.onSignedIn(session)
    } catch (e) {
      setError({
        form,
        message: e instanceof SignInRefused ? e.message : 'The server could not be reached. Try again.',
      })
      setBusy(false)
    }
  }
  const withPasskey = (event: Event) => {
    event.preventDefault()
    void signIn('passkey', () => ConsoleSession.signInWithPasskey(location.origin, bank.current?.value ?? ''))
  }
  const withToken = (event: Event) => {
    event.preventDefault()
    void signIn('token', () => ConsoleSession.signIn(location.origin, input.current?.value ?? ''))
  }
  const alert = (form: 'passkey' | 'token') =>
    error?.form === form && (
      <p id={`${form}-error`} class="alert" role="alert">
        {error.message}
      </p>
    )
  return (
    <main class="centered">
      <div class="card sign-in">
        <h1>Strongroom agent console</h1>
        <form onSubmit={withPasskey} aria-describedby="passkey-help">
          <label for="bank-id">Bank ID</label>
          <input
            id="bank-id"
            ref={bank}
            name="bank-id"
            defaultValue={tenantOfPage()}
            autocomplete="off"
            spellcheck={false}
            required
            aria-invalid={error?.form === 'passkey' ? 'true' : undefined}
            aria-errormessage={error?.form === 'passkey' ? 'passkey-error' : undefined}
          />
          <p id="passkey-help" class="help">
            Your browser offers the passkeys it holds for this site; the one you choose says who you are. The bank ID (
            <code>ten_…</code>) comes with the console link your bank gave you.
          </p>
          {alert('passkey')}
          <button type="submit" ref={passkeyButton} disabled={busy}>
            {busy ? 'Signing in…' : 'Sign in with a passkey'}
          </button>
        </form>
        <form class="token-sign-in" onSubmit={withToken} aria-describedby="sign-in-help">
          <h2>Or with a staff token</h2>
          <label for="staff-token">Staff token</label>
          <input
            id="staff-token"
            ref={input}
            type="password"
            name="staff-token"
            autocomplete="off"
            spellcheck={false}
            required
            aria-invalid={error?.form === 'token' ? 'true' : undefined}
            aria-errormessage={error?.form === 'token' ? 'token-error' : undefined}
          />
          <p id="sign-in-help" class="help">
            In dev mode, the agent token is in <code>strongroom-data/dev-credentials.json</code>. Either way, the token
            is kept in this tab's memory only: reloading or closing the tab signs you out.
          </p>
          {alert('token')}
          <button type="submit" class="secondary" disabled={busy}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </form>
      </div>
    </main>
  )
}

/** Registers a passkey of the signed-in staff member made by this device, so the next sign-in needs no token. */
function AddPasskey(props: { session: ConsoleSession }) {
  const [outcome, setOutcome] = useState<string | undefined>(undefined)
  const [busy, setBusy] = useState(false)
  const add = async () => {
    setBusy(true)
    setOutcome(undefined)
    try {
      await props.session.addPasskey()
      setOutcome('Passkey added: next time, sign in with it.')
    } catch (e) {
      setOutcome(
        e instanceof SignInRefused
          ? e.message
          : e instanceof StrongroomError && e.status === 409
            ? 'This passkey is already registered.'
            : 'The passkey could not be added. Try again.',
      )
    }
    setBusy(false)
  }
  return (
    <>
      <button type="button" class="secondary" onClick={() => void add()} disabled={busy}>
        Add a passkey
      </button>
      {outcome && (
        <p class="passkey-outcome" role="status">
          {outcome}
        </p>
      )}
    </>
  )
}

const streamStateLabel = {
  connecting: 'Connecting…',
  open: 'Live',
  reconnecting: 'Reconnecting…',
  closed: 'Offline',
} as const

function Console(props: { session: ConsoleSession; onSignOut: () => void }) {
  const { session } = props
  useSession(session)
  useAttention(session)
  // Compliance officers start in the archive; whoever may also answer starts in the inbox.
  const [view, setView] = useState<'conversations' | 'compliance'>(
    session.can('conversations:write') ? 'conversations' : 'compliance',
  )
  const open = session.openId ? session.entries.get(session.openId) : undefined
  return (
    <div class={`console${open ? ' has-open' : ''}`}>
      <header class="topbar">
        <h1>Agent console</h1>
        <p class="status" aria-live="polite">
          <span class={`dot ${session.streamState}`} aria-hidden="true" />
          {streamStateLabel[session.streamState]}
        </p>
        {session.can('archive:read') && (
          <nav class="views" aria-label="Screens">
            {(['conversations', 'compliance'] as const).map((name) => (
              <button
                key={name}
                type="button"
                class="secondary"
                aria-current={view === name ? 'page' : undefined}
                onClick={() => setView(name)}
              >
                {name === 'conversations' ? 'Conversations' : 'Compliance'}
              </button>
            ))}
          </nav>
        )}
        <NotificationsButton />
        <AddPasskey session={session} />
        <button type="button" class="secondary" onClick={props.onSignOut}>
          Sign out
        </button>
      </header>
      {session.problem && (
        <p class="alert banner" role="alert">
          {session.problem}
        </p>
      )}
      {view === 'compliance' ? (
        <Compliance session={session} />
      ) : (
        <div class="panes">
          <Inbox session={session} />
          {open ? (
            <ConversationView key={open.conversation.id} session={session} entry={open} />
          ) : (
            <section class="conversation empty" aria-label="Conversation">
              <p>Choose a conversation.</p>
            </section>
          )}
          {open && <ConversationTools key={open.conversation.id} session={session} entry={open} />}
        </div>
      )}
    </div>
  )
}

function Inbox(props: { session: ConsoleSession }) {
  const { session } = props
  const [filter, setFilter] = useState(noFilter)
  const [searching, setSearching] = useState(false)
  const all = session.inbox()
  // One line per customer: their most recent conversation stands for all of them.
  const groups = new Map<string, InboxEntry[]>()
  for (const entry of all.filter((e) => passesFilter(session, e, filter))) {
    const key = entry.conversation.customerId ?? entry.conversation.id
    groups.set(key, [...(groups.get(key) ?? []), entry])
  }
  const entries = [...groups.values()]
  return (
    <nav class="inbox" aria-labelledby="inbox-heading">
      <h2 id="inbox-heading">Inbox</h2>
      <SearchBox session={session} onResults={setSearching} />
      {!searching && (
        <InboxFilters
          filter={filter}
          canSeeTeam={session.can('conversations:all')}
          onChange={(next) => {
            // Ticked: the list is read now, as it stands (the stream only follows this staff member's own).
            if (next.team && !filter.team) session.showTeam()
            setFilter(next)
          }}
        />
      )}
      {searching ? null : entries.length === 0 ? (
        <p>{all.length === 0 ? 'No conversations yet.' : 'No conversation matches these filters.'}</p>
      ) : (
        <VirtualList
          items={entries}
          keyOf={(group) => (group[0] as InboxEntry).conversation.id}
          estimatedRowHeight={88}
          render={(group) => <InboxLine session={session} group={group} />}
        />
      )}
    </nav>
  )
}

function InboxLine(props: { session: ConsoleSession; group: InboxEntry[] }) {
  const { session, group } = props
  const entry = group[0] as InboxEntry
  const unread = group.reduce((sum, e) => sum + e.unread, 0)
  const preview = session.preview(entry)
  return (
    <button
      type="button"
      class="inbox-item"
      aria-current={group.some((e) => e.conversation.id === session.openId) ? 'true' : undefined}
      onClick={() => void session.open(entry.conversation.id)}
    >
      <span class="who">{entry.customerName}</span>
      <ChannelIcons session={session} entries={group} />
      <span class="when">
        {entry.lastMessageAt ? (
          <time dateTime={entry.lastMessageAt}>{time.format(new Date(entry.lastMessageAt))}</time>
        ) : (
          'No messages'
        )}
      </span>
      {preview && <span class="preview">{preview}</span>}
      {entry.conversation.status !== 'open' && (
        <span class={`status-badge status-${entry.conversation.status}`}>
          {statusLabels[entry.conversation.status]}
        </span>
      )}
      {unread > 0 && <span class="unread">{unread} unread</span>}
    </button>
  )
}

const fromLabel: Record<ShownMessage['from'], string> = {
  you: 'You',
  customer: 'Customer',
  staff: 'Bank staff',
  archive: 'Bank archive',
  system: 'Strongroom',
}

function ConversationView(props: { session: ConsoleSession; entry: InboxEntry }) {
  const { session, entry } = props
  const loaded = session.messages.get(entry.conversation.id)
  const timeline = session.timeline(entry)
  const messages = loaded && timeline.map((item) => item.message)
  const several = session.customerEntries(entry).length > 1
  const heading = useRef<HTMLHeadingElement>(null)
  const end = useRef<HTMLLIElement>(null)
  useEffect(() => heading.current?.focus(), [])
  useEffect(() => end.current?.scrollIntoView({ block: 'end' }), [messages?.length])
  return (
    <section class="conversation" aria-labelledby="conversation-heading">
      <div class="conversation-head">
        <button type="button" class="secondary back" onClick={() => void session.open(undefined)}>
          Back to inbox
        </button>
        <h2 id="conversation-heading" ref={heading} tabIndex={-1}>
          {entry.customerName}
        </h2>
        <ChannelBadge session={session} conversationId={entry.conversation.id} />
        <ChannelOrigin session={session} conversationId={entry.conversation.id} />
        <StatusControl session={session} entry={entry} />
      </div>
      {session.publicChannels.isPublic(entry.conversation.id) && (
        <PivotPanel session={session} conversationId={entry.conversation.id} />
      )}
      {messages === undefined ? (
        <p>Loading messages…</p>
      ) : (
        <div
          class="messages"
          role="log"
          aria-live="polite"
          aria-label={`Messages with ${entry.customerName}`}
          // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region takes focus to scroll by keyboard (WCAG 2.1.1), as a conversation may hold no control
          tabIndex={0}
        >
          <ol class="message-list">
            {timeline.map(({ conversationId, message: m }, i) => (
              <Fragment key={`${conversationId}:${m.seq}`}>
                {!several && securePartStartsAt(messages, i) && <SecureDivider />}
                <li class={`message from-${m.from}`}>
                  <span class="meta">
                    {fromLabel[m.from]} · <time dateTime={m.createdAt}>{dayAndTime.format(new Date(m.createdAt))}</time>
                    {several && (
                      <span class={`channel-mark channel-${channelKeyOf(session, conversationId)}`}>
                        {' '}
                        · {channelKeyLabels[channelKeyOf(session, conversationId)]}
                      </span>
                    )}
                  </span>
                  {m.text !== undefined ? <p class="text">{m.text}</p> : <p class="placeholder">{m.placeholder}</p>}
                  {m.public && <PublicMessageDetails details={m.public} />}
                </li>
              </Fragment>
            ))}
            {!several && securePartStartsAt(messages, messages.length) && <SecureDivider />}
            <li ref={end} class="end" aria-hidden="true" />
          </ol>
        </div>
      )}
      <Composer session={session} conversationId={entry.conversation.id} />
    </section>
  )
}

function Composer(props: { session: ConsoleSession; conversationId: string }) {
  const { session, conversationId } = props
  const suggestions = useCannedReplies(session)
  return (
    <MessageComposer
      suggestions={suggestions}
      id="reply"
      className="composer"
      label={replyLabel(session, conversationId)}
      help="Enter sends; Shift+Enter starts a new line; / and a shortcut inserts a canned reply."
      maxLength={4000}
      send={(text) => session.send(conversationId, text)}
      whyNotSent={(error) => whyNotSent(error, channelNameOf(session, conversationId))}
      waiting={
        session.awaitingEncryption(conversationId)
          ? 'Waiting for the customer’s browser to set up end-to-end encryption…'
          : undefined
      }
    />
  )
}
