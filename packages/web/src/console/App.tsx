import { StrongroomError } from '@strongroom/sdk'
import { useEffect, useRef, useState } from 'preact/hooks'
import { AttachmentView } from '../shared/Attachment.tsx'
import { MessageComposer } from '../shared/MessageComposer.tsx'
import { Compliance } from './Compliance.tsx'
import { ConversationTools } from './ConversationTools.tsx'
import { outcomeSentence, paymentLine } from './consent-words.ts'
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
  type ChannelKey,
  ChannelOrigin,
  channelKeyLabels,
  channelKeyOf,
  channelNameOf,
  PublicMessageDetails,
  RiskBadge,
  replyLabel,
  SecureDivider,
} from './PublicChannel.tsx'
import { AwayToggle, PresenceBadge } from './presence.tsx'
import { whyNotSent } from './public-channels.ts'
import { Reports } from './Reports.tsx'
import { ConsoleSession, type InboxEntry, type ShownMessage, SignInRefused } from './session.ts'
import type { TimelineItem } from './timeline.ts'
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
  const [notice, setNotice] = useState<string | undefined>(undefined)
  // The server ended the session (deactivated, signed out elsewhere, past its end): back to signing in, saying so.
  useEffect(
    () =>
      session?.subscribe(() => {
        if (!session.ended) return
        session.close()
        setNotice('Your session has ended. Sign in again.')
        setSession(undefined)
      }),
    [session],
  )
  if (!session) return <SignIn onSignedIn={setSession} notice={notice} />
  return (
    <Console
      session={session}
      onSignOut={async () => {
        const logout = await session.signOut()
        // Signed in through the bank's identity provider: its session ends too, and it sends the browser back here.
        if (logout) location.assign(logout)
        else setSession(undefined)
      }}
    />
  )
}

/** What went wrong on the way through the identity provider, as the server names it in the fragment. */
const signInFailures: Record<string, string> = {
  'no-provider': 'Your bank has not set up sign-in with its identity provider here.',
  unavailable: 'Your bank’s identity provider could not be reached. Try again.',
  state: 'That sign-in has expired or was already used. Sign in again.',
  'provider-error': 'Your bank’s identity provider did not sign you in.',
  token: 'Your bank’s identity provider’s answer could not be verified. Sign in again.',
  'no-role': 'Your account has no role in this console: ask your administrator.',
  deactivated: 'Your account is deactivated: ask your administrator.',
  conflict: 'Another staff member has your name here: ask your administrator.',
}

/**
 * The handoff code or the failure a sign-in through the identity provider left in the address, or the invitation an
 * administrator sent (`#invite=`), taken out of it: kept in memory only, never in the history.
 */
function takeFragment(): { handoff?: string; failure?: string; invitation?: string } {
  const fragment = new URLSearchParams(location.hash.slice(1))
  if (!fragment.has('oidc') && !fragment.has('sign-in-error') && !fragment.has('invite')) return {}
  history.replaceState(null, '', location.pathname + location.search)
  const invitation = fragment.get('invite')
  if (invitation) return { invitation }
  const failure = fragment.get('sign-in-error')
  return fragment.get('oidc')
    ? { handoff: fragment.get('oidc') as string }
    : { failure: signInFailures[failure ?? ''] ?? 'The sign-in failed. Try again.' }
}

/** The bank (tenant) a passkey signs in to: from the console link the bank gives its staff (`?tenant=ten_…`). */
const tenantOfPage = () => new URLSearchParams(location.search).get('tenant') ?? ''

type SignInForm = 'idp' | 'passkey' | 'token' | 'invite'

function SignIn(props: { onSignedIn: (session: ConsoleSession) => void; notice?: string | undefined }) {
  const [fragment] = useState(takeFragment)
  const [error, setError] = useState<{ form: SignInForm; message: string } | undefined>(
    props.notice ? { form: 'idp', message: props.notice } : undefined,
  )
  const [busy, setBusy] = useState(false)
  const bank = useRef<HTMLInputElement>(null)
  const input = useRef<HTMLInputElement>(null)
  const passkeyButton = useRef<HTMLButtonElement>(null)
  // The passkey is the way in: its button has focus when the link named the bank, else the bank ID field.
  useEffect(() => (bank.current?.value ? passkeyButton.current : bank.current)?.focus(), [])
  const signIn = async (form: SignInForm, open: () => Promise<ConsoleSession>) => {
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
  // Back from the bank's identity provider: the code it handed this page signs in (once), or why it did not.
  useEffect(() => {
    const { handoff, failure } = fragment
    if (failure) setError({ form: 'idp', message: failure })
    if (handoff) void signIn('idp', () => ConsoleSession.signInWithOidc(location.origin, tenantOfPage(), handoff))
  }, [])
  const withIdentityProvider = (event: Event) => {
    event.preventDefault()
    location.assign(`/sign-in/oidc?tenant=${encodeURIComponent(bank.current?.value.trim() ?? '')}`)
  }
  const withPasskey = (event: Event) => {
    event.preventDefault()
    void signIn('passkey', () => ConsoleSession.signInWithPasskey(location.origin, bank.current?.value ?? ''))
  }
  const withToken = (event: Event) => {
    event.preventDefault()
    void signIn('token', () => ConsoleSession.signIn(location.origin, input.current?.value ?? ''))
  }
  const alert = (form: SignInForm) =>
    error?.form === form && (
      <p id={`${form}-error`} class="alert" role="alert">
        {error.message}
      </p>
    )
  const { invitation } = fragment
  if (invitation) {
    const enrol = (event: Event) => {
      event.preventDefault()
      void signIn('invite', () => ConsoleSession.enrolFromInvitation(location.origin, tenantOfPage(), invitation))
    }
    return (
      <main class="centered">
        <form class="card sign-in" onSubmit={enrol} aria-describedby="invite-help">
          <h1>Set up your passkey</h1>
          <p id="invite-help" class="help">
            Your bank invited you to its agent console. Make a passkey on this device (your fingerprint, face or PIN):
            from now on you sign in with it, with no password or token. This link works once.
          </p>
          {alert('invite')}
          <button type="submit" disabled={busy}>
            {busy ? 'Setting up…' : 'Create a passkey and sign in'}
          </button>
        </form>
      </main>
    )
  }
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
        <form class="idp-sign-in" onSubmit={withIdentityProvider}>
          {alert('idp')}
          <button type="submit" class="secondary" disabled={busy}>
            Sign in with your bank account
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

type View = 'conversations' | 'reports' | 'compliance'
const viewNames: Record<View, string> = {
  conversations: 'Conversations',
  reports: 'Reported messages',
  compliance: 'Compliance',
}

function Console(props: { session: ConsoleSession; onSignOut: () => Promise<void> }) {
  const { session } = props
  useSession(session)
  useAttention(session)
  // Compliance officers start in the archive; whoever may also answer starts in the inbox.
  const [view, setView] = useState<View>(session.can('conversations:write') ? 'conversations' : 'compliance')
  const views = (['conversations', 'reports', 'compliance'] as const).filter(
    (name) => name === 'conversations' || session.can(name === 'reports' ? 'conversations:read' : 'archive:read'),
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
        {views.length > 1 && (
          <nav class="views" aria-label="Screens">
            {views.map((name) => (
              <button
                key={name}
                type="button"
                class="secondary"
                aria-current={view === name ? 'page' : undefined}
                onClick={() => setView(name)}
              >
                {viewNames[name]}
              </button>
            ))}
          </nav>
        )}
        {session.can('conversations:write') && <AwayToggle client={session.client} />}
        <NotificationsButton />
        <AddPasskey session={session} />
        <button type="button" class="secondary" onClick={() => void props.onSignOut()}>
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
      ) : view === 'reports' ? (
        <Reports session={session} />
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

/** What made any of the customer's public conversations suspicious (a lookalike link, a spoofed sender), each once. */
function riskOf(session: ConsoleSession, group: readonly InboxEntry[]): string[] {
  const flags = group.flatMap((e) => {
    const channel = session.publicChannels.of(e.conversation.id)
    return channel?.kind === 'public' ? channel.risk : []
  })
  return [...new Set(flags)]
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
      <RiskBadge risk={riskOf(session, group)} />
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
      <TeamAssignee session={session} entry={entry} />
    </button>
  )
}

/** In the whole team's view, a conversation of someone else's: whom it is with, and whether they are there. */
function TeamAssignee(props: { session: ConsoleSession; entry: InboxEntry }) {
  const { session, entry } = props
  const assigned = entry.conversation.assignedStaffId
  if (session.isMember(entry) || assigned === null || session.directory.staff === undefined) return null
  return (
    <span class="assignee">
      With {session.directory.nameOf(assigned) ?? 'a former colleague'} ·{' '}
      <PresenceBadge presence={session.directory.presenceOf(assigned)} />
    </span>
  )
}

const fromLabel: Record<ShownMessage['from'], string> = {
  you: 'You',
  customer: 'Customer',
  staff: 'Agent',
  archive: 'Bank archive',
  system: 'Automatic message',
}

function ConversationView(props: { session: ConsoleSession; entry: InboxEntry }) {
  const { session, entry } = props
  const conversationId = entry.conversation.id
  const [, setTick] = useState(0)
  useEffect(() => session.consents.subscribe(() => setTick((t) => t + 1)), [session])
  useEffect(() => {
    // The payment requests of the conversation belong in its timeline (staff who may not see them get none).
    session.consents.load(conversationId).catch(() => undefined)
  }, [session, conversationId])
  const timeline = session.timeline(entry)
  const several = session.customerEntries(entry).length > 1
  const heading = useRef<HTMLHeadingElement>(null)
  const end = useRef<HTMLLIElement>(null)
  useEffect(() => heading.current?.focus(), [])
  useEffect(() => end.current?.scrollIntoView({ block: 'end' }), [timeline?.length])
  return (
    <section class="conversation" aria-labelledby="conversation-heading">
      <div class="conversation-head">
        <button type="button" class="secondary back" onClick={() => void session.open(undefined)}>
          Back to inbox
        </button>
        <h2 id="conversation-heading" ref={heading} tabIndex={-1}>
          {entry.customerName}
        </h2>
        <ChannelBadge session={session} conversationId={conversationId} />
        <ChannelOrigin session={session} conversationId={conversationId} />
        <StatusControl session={session} entry={entry} />
        {session.consents.fraudIn(conversationId) && (
          <span class="badge danger fraud-flag">Fraud reported: the customer said a payment wasn’t them</span>
        )}
      </div>
      {session.publicChannels.isPublic(conversationId) && (
        <PivotPanel session={session} conversationId={conversationId} />
      )}
      {timeline === undefined ? (
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
            {timeline.map((item) => (
              <TimelineLine
                key={item.key}
                item={item}
                read={item.kind === 'message' && session.readMark(item.conversationId) === item.message.seq}
                session={session}
                customerName={entry.customerName}
                channelOf={several ? (id) => channelKeyOf(session, id) : undefined}
              />
            ))}
            <li ref={end} class="end" aria-hidden="true" />
          </ol>
        </div>
      )}
      <p class="typing" role="status">
        {session.customerTyping(entry) ? `${entry.customerName} is typing…` : ''}
      </p>
      <Composer session={session} conversationId={conversationId} />
    </section>
  )
}

function TimelineLine(props: {
  item: TimelineItem
  /** The customer read the conversation up to this message of the bank's (the last one they read). */
  read: boolean
  session: ConsoleSession
  customerName: string
  /** With several conversations in one timeline, the channel each line came on. */
  channelOf?: ((conversationId: string) => ChannelKey) | undefined
}) {
  const { item, channelOf } = props
  switch (item.kind) {
    case 'divider':
      return <SecureDivider />
    case 'message': {
      const m = item.message
      return (
        <li class={`message from-${m.from}`}>
          <span class="meta">
            {fromLabel[m.from]} · <time dateTime={m.createdAt}>{dayAndTime.format(new Date(m.createdAt))}</time>
            {channelOf && (
              <span class={`channel-mark channel-${channelOf(item.conversationId)}`}>
                {' '}
                · {channelKeyLabels[channelOf(item.conversationId)]}
              </span>
            )}
          </span>
          <MessageBody message={m} session={props.session} conversationId={item.conversationId} />
          {m.public && <PublicMessageDetails details={m.public} />}
          {props.read && <span class="read-mark">Read</span>}
        </li>
      )
    }
    case 'consent-asked':
      return (
        <li class="timeline-event consent-asked" data-consent={item.tracked.consent.id}>
          <span class="meta">
            Payment request · <time dateTime={item.at}>{dayAndTime.format(new Date(item.at))}</time>
          </span>
          <p class="text">Asked to confirm {paymentLine(item.tracked.consent)}</p>
        </li>
      )
    case 'consent-outcome': {
      const { consent } = item.tracked
      return (
        <li
          class={`timeline-event consent-outcome status-${consent.status}${consent.fraudReported ? ' fraud' : ''}`}
          data-consent={consent.id}
        >
          <span class="meta">
            Payment {paymentLine(consent)} · <time dateTime={item.at}>{dayAndTime.format(new Date(item.at))}</time>
          </span>
          <p class="text">{outcomeSentence(item.tracked, props.customerName)}</p>
        </li>
      )
    }
  }
}

function MessageBody(props: { message: ShownMessage; session: ConsoleSession; conversationId: string }) {
  const { message: m, session, conversationId } = props
  const attachment = m.attachment
  const secure = session.secure
  if (attachment && secure) {
    return <AttachmentView attachment={attachment} open={() => secure.openAttachment(conversationId, attachment)} />
  }
  return m.text !== undefined ? <p class="text">{m.text}</p> : <p class="placeholder">{m.placeholder}</p>
}

/** Files go end-to-end encrypted in a secure conversation; on a public channel the composer says why they do not. */
function attachmentsFor(session: ConsoleSession, conversationId: string) {
  const channel = channelNameOf(session, conversationId)
  if (channel) {
    return {
      refused: `Files are not sent on ${channel}: it is not end-to-end encrypted. Send them in the secure chat.`,
    }
  }
  return { send: (file: File) => session.sendAttachment(conversationId, file) }
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
      typing={() => session.typed(conversationId)}
      attach={attachmentsFor(session, conversationId)}
      whyNotSent={(error) => whyNotSent(error, channelNameOf(session, conversationId))}
      waiting={
        session.awaitingEncryption(conversationId)
          ? 'Waiting for the customer’s browser to set up end-to-end encryption…'
          : undefined
      }
    />
  )
}
