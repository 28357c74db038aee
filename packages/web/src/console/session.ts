import {
  type AttachmentRef,
  base64ToBytes,
  type Conversation,
  type ConversationStatus,
  type ConversationUpdate,
  type Credentials,
  claimStaffSession,
  enrolStaffPasskey,
  isPublicChannelMessage,
  type Message,
  type MessageStream,
  MLS_CONTENT_TYPE,
  StaffClient,
  StaffSession,
  StaffToken,
  type StreamState,
  StrongroomError,
  signInStaffWithPasskey,
  staffInvitationPasskeyOptions,
  staffPasskeySignInOptions,
} from '@strongroom/sdk'
import { ConversationIndicators, type IndicatedMessage, type SignalChannel } from '../shared/indicators.ts'
import { createPasskey, getPasskeyAssertion } from '../shared/passkey.ts'
import { ConsentTracker } from './consent-tracker.ts'
import { Desk } from './desk.ts'
import { StaffDirectory } from './presence.tsx'
import { PublicChannels, type PublicDetails } from './public-channels.ts'
import { BrowserSecureContent } from './secure-content.ts'
import { buildTimeline, type TimelineItem } from './timeline.ts'

/** One line of the inbox. */
export interface InboxEntry {
  conversation: Conversation
  customerName: string
  /** Messages after this staff member's read marker. */
  unread: number
  /**
   * The newest seq `unread` accounts for: a message at or below it is already counted (the conversation was read from
   * the server after the message was stored, as when its first message is what adds it to the inbox).
   */
  unreadCountedTo: number
  lastMessageAt: string | undefined
  /** The last message's text (or what stands for it), once the console has seen it. */
  preview?: string | undefined
}

/** A message as the console shows it. */
export interface ShownMessage {
  seq: number
  id: string
  from: 'you' | 'customer' | 'staff' | 'archive' | 'system'
  /** The text, or undefined when the console cannot show it (then `placeholder` says why). */
  text: string | undefined
  placeholder?: string
  /** The file this secure message hands over (this browser downloads and decrypts it to show it). */
  attachment?: AttachmentRef
  createdAt: string
  /** A public-channel message (or public history imported into a secure conversation). */
  public?: PublicDetails
}

export interface StaffIdentity {
  staffId: string
  tenantId: string
  role: string
  /** What this token allows: the console shows only the screens it can use. */
  scopes: readonly string[]
}

/**
 * Reads or sends the content of secure (MLS) conversations for this console. The first console shows a placeholder
 * for MLS messages; the browser MLS member plugs in here.
 */
export interface SecureContent {
  isSecure(conversationId: string): Promise<boolean>
  /** Whether a message to the conversation goes encrypted (a member, or a browser that can take its place back). */
  canSend(conversationId: string): Promise<boolean>
  /** The text of a message/mls message, or undefined if it is not an application message this member can read. */
  read(message: Message): Promise<{ text: string; attachment?: AttachmentRef } | { placeholder: string } | undefined>
  send(conversationId: string, text: string): Promise<void>
  /** Encrypts a file in this browser and sends it to the group; the server gets ciphertext only. */
  sendAttachment(conversationId: string, file: File): Promise<void>
  /** A file a message handed over, downloaded, checked against its hash and decrypted here. */
  openAttachment(conversationId: string, attachment: AttachmentRef): Promise<Uint8Array<ArrayBuffer>>
  /** Sends secure messages over the console's stream (pipelined), not one HTTP request each. */
  sendOver(stream: MessageStream | undefined): void
  /** Typing and read indicators: sent to the members connected now, read from the stream (see indicators.ts). */
  signal: SignalChannel['signal']
  readSignal: SignalChannel['readSignal']
}

const HISTORY = 200
const INBOX_PAGE = 500
const textDecoder = new TextDecoder('utf-8', { fatal: false })

/** Thrown by signIn for a token the server refuses or that is not a staff member's, or a passkey not used. */
export class SignInRefused extends Error {}

const TENANT_ID = /^ten_[A-Za-z0-9_-]{22}$/

/** Why the browser gave no passkey, in words for the agent (WebAuthn rejects with a DOMException naming the case). */
export function whyNoPasskey(error: unknown): string {
  if (!(error instanceof DOMException)) return 'This browser cannot use passkeys here.'
  if (error.name === 'NotAllowedError') {
    return 'No passkey was used: the prompt was cancelled or timed out, or this device has no passkey for this site.'
  }
  if (error.name === 'InvalidStateError') return 'This device already holds a passkey of yours for this site.'
  if (error.name === 'SecurityError') return 'Passkeys are not set up for this address: ask your administrator.'
  return 'This browser cannot use passkeys here.'
}

/**
 * A signed-in staff member: their client, their inbox and the open conversation, kept live from the stream. The
 * token lives only in this object (memory): a reload or a closed tab signs out.
 */
export class ConsoleSession {
  readonly client: StaffClient
  readonly me: StaffIdentity
  readonly entries = new Map<string, InboxEntry>()
  readonly messages = new Map<string, ShownMessage[]>()
  openId: string | undefined
  streamState: StreamState = 'connecting'
  /** Called when a customer's message arrives (desktop notifications listen here). */
  onCustomerMessage: ((entry: InboxEntry) => void) | undefined
  /** The last thing that went wrong, in words for the agent. */
  problem: string | undefined
  secure: SecureContent | undefined
  /** The customers' typing and read indicators in secure conversations, and this agent's. */
  indicators: ConversationIndicators | undefined
  /** The payment confirmations of the conversations shown, followed until each is decided. */
  readonly consents: ConsentTracker
  readonly publicChannels: PublicChannels
  readonly desk: Desk
  /** The bank's staff and their presence, for supervisors handing conversations over. */
  readonly directory: StaffDirectory
  /** Conversations whose last message is being fetched for the inbox's preview. */
  readonly #previewing = new Set<string>()
  /** Pivots' secure conversations this browser has joined as an MLS member, so it can encrypt for them. */
  readonly #joined = new Set<string>()
  #stream: MessageStream | undefined
  /** Customer names by id, asked once each however many conversations share a customer. */
  readonly #customerNames = new Map<string, Promise<string>>()
  #listeners = new Set<() => void>()
  #closed = false
  /** Told when a conversation's pivot link changed (the stream's update): the pivot panel reads its links again. */
  readonly #pivotListeners = new Set<(conversationId: string) => void>()
  /** Whether a customer's SIM was swapped recently, asked once per customer while signed in. */
  readonly #simSwaps = new Map<string, Promise<{ swapped: boolean; windowHours: number } | undefined>>()
  /** Stream events are handled one at a time, in the order they came. */
  #queue: Promise<void> = Promise.resolve()

  /** The server ended this session (signed out elsewhere, deactivated, or past its end): the console signs in again. */
  ended = false
  readonly #credentials: Credentials

  private constructor(client: StaffClient, credentials: Credentials, me: StaffIdentity) {
    this.client = client
    this.#credentials = credentials
    this.me = me
    this.consents = new ConsentTracker(client)
    this.publicChannels = new PublicChannels(client, () => this.#changed())
    this.desk = new Desk(client)
    this.directory = new StaffDirectory(client, () => this.#changed())
  }

  static async signIn(baseUrl: string, token: string): Promise<ConsoleSession> {
    const trimmed = token.trim()
    if (!/^srs_[A-Za-z0-9_-]+$/.test(trimmed)) throw new SignInRefused('That is not a staff token (it starts srs_).')
    return ConsoleSession.#open(baseUrl, new StaffToken(trimmed))
  }

  /**
   * Signs in with a discoverable passkey of a staff member of this bank (tenant): the browser lists the passkeys it
   * holds for this site, and the one chosen says who signs in. The token the server issues stays in memory, as a typed
   * one does.
   */
  static async signInWithPasskey(baseUrl: string, tenantId: string): Promise<ConsoleSession> {
    const trimmed = tenantId.trim()
    if (!TENANT_ID.test(trimmed)) throw new SignInRefused('That is not a bank ID (it starts ten_).')
    const options = await staffPasskeySignInOptions({ baseUrl, tenantId: trimmed })
    const assertion = await getPasskeyAssertion(options).catch((error: unknown) => {
      throw new SignInRefused(whyNoPasskey(error))
    })
    try {
      const { credentials } = await signInStaffWithPasskey({ baseUrl, tenantId: trimmed, assertion })
      return await ConsoleSession.#open(baseUrl, credentials)
    } catch (error) {
      if (error instanceof StrongroomError && error.status === 401) {
        throw new SignInRefused('The server refused this passkey: it is not a staff passkey of this bank.')
      }
      throw error
    }
  }

  /**
   * Enrols this device's passkey for the staff member an administrator's invitation link names (single-use, no token),
   * then signs in with it: the same passkey prompt a later sign-in shows.
   */
  static async enrolFromInvitation(baseUrl: string, tenantId: string, invitation: string): Promise<ConsoleSession> {
    const trimmed = tenantId.trim()
    if (!TENANT_ID.test(trimmed)) throw new SignInRefused('This invitation link has no bank ID: ask for a new one.')
    const refused = (error: unknown) => {
      if (error instanceof StrongroomError && (error.status === 401 || error.status === 400)) {
        throw new SignInRefused(
          'This invitation link is invalid, used or expired: ask your administrator for a new one.',
        )
      }
      throw error
    }
    const options = await staffInvitationPasskeyOptions({ baseUrl, tenantId: trimmed, invitation }).catch(refused)
    const credential = await createPasskey(options).catch((error: unknown) => {
      throw new SignInRefused(whyNoPasskey(error))
    })
    await enrolStaffPasskey({ baseUrl, tenantId: trimmed, invitation, credential }).catch(refused)
    return ConsoleSession.signInWithPasskey(baseUrl, trimmed)
  }

  /**
   * Signs in with the single-use code a sign-in through the bank's identity provider handed this page (in its
   * address's fragment): the session's short-lived tokens renew themselves while it lasts, in memory only.
   */
  static async signInWithOidc(baseUrl: string, tenantId: string, handoff: string): Promise<ConsoleSession> {
    try {
      return await ConsoleSession.#open(baseUrl, await claimStaffSession({ baseUrl, tenantId, handoff }))
    } catch (error) {
      if (error instanceof StrongroomError && (error.status === 401 || error.status === 400)) {
        throw new SignInRefused('That sign-in has expired or was already used. Sign in again.')
      }
      throw error
    }
  }

  static async #open(baseUrl: string, credentials: Credentials): Promise<ConsoleSession> {
    const client = new StaffClient({ baseUrl, credentials })
    let me: Awaited<ReturnType<StaffClient['me']>>
    try {
      me = await client.me()
    } catch (error) {
      if (error instanceof StrongroomError && error.status === 401) {
        throw new SignInRefused('The server refused this token: it may have expired or been revoked.')
      }
      throw error
    }
    if (me.kind !== 'staff') throw new SignInRefused('This token is not a staff member’s.')
    return new ConsoleSession(client, credentials, {
      staffId: String(me.staffId),
      tenantId: me.tenantId,
      role: String(me.role),
      scopes: Array.isArray(me.scopes) ? me.scopes.map(String) : [],
    })
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  #changed(): void {
    for (const listener of this.#listeners) listener()
  }

  can(scope: string): boolean {
    return this.me.scopes.includes(scope)
  }

  /** A conversation changed by this console (reassigned): shown as the server now has it. */
  updateConversation(conversation: Conversation): void {
    const entry = this.entries.get(conversation.id)
    if (entry) entry.conversation = conversation
    this.#changed()
  }

  /** Loads the inbox, then follows it live from where the list left off. */
  async start(): Promise<void> {
    // The browser's MLS member first: joining the groups this agent was added to lets their messages be read. Staff
    // who cannot write (compliance) are no member of any group.
    if (this.can('conversations:write')) {
      this.secure = await BrowserSecureContent.open(this.client, this.me).catch((error: Error) => {
        this.problem = `Secure conversations cannot be read in this browser: ${error.message}`
        return undefined
      })
    }
    if (this.secure) {
      this.indicators = new ConversationIndicators(
        this.secure,
        (sender) => sender.kind === 'device',
        () => this.#changed(),
      )
    }
    const conversations = await this.#listAllConversations()
    await this.publicChannels.learn(conversations.map((c) => c.id))
    await Promise.all(conversations.map((c) => this.#addConversation(c)))
    this.#changed()
    if (this.#closed) return
    const cursors = Object.fromEntries(conversations.map((c) => [c.id, c.lastSeq]))
    this.#stream = this.client.stream({
      cursors,
      onMessage: (message) => this.#enqueue(() => this.#onMessage(message)),
      onJoined: (conversationId) => this.#enqueue(() => this.#onJoined(conversationId)),
      onLeft: (conversationId) => this.#enqueue(async () => this.#onLeft(conversationId)),
      // Not queued behind messages: an indicator is of the moment.
      onSignal: (signal) => void this.indicators?.received(signal),
      onPresence: () => void this.directory.refresh().catch(() => undefined),
      onStaffChanged: () => void this.directory.refresh(true).catch(() => undefined),
      // Not queued behind messages: a payment decision shows as soon as it is read.
      onUpdate: (conversationId, update) => void this.#onUpdate(conversationId, update),
      onStateChange: (state) => {
        // Back after a break: updates are not replayed, so what is shown is read again.
        if (state === 'open' && this.streamState === 'reconnecting') this.#resync()
        this.streamState = state
        // What the agent read while the stream was not open is said now.
        if (state === 'open') this.#seen()
        // Closed without this console closing it: the server refused the credentials (revoked, deactivated, ended).
        if (state === 'closed' && !this.#closed) this.ended = true
        this.#changed()
      },
      onError: (error) => {
        this.problem = error.message
        this.#changed()
      },
    })
    this.secure?.sendOver(this.#stream)
    document.addEventListener('visibilitychange', this.#seen)
    if (this.can('conversations:assign')) await this.directory.refresh().catch(() => undefined)
  }

  // ── Typing and read indicators of the open customer's secure conversations ──

  /** The agent types a reply in the conversation: the customer is told (paced). */
  typed(conversationId: string): void {
    if (this.streamState !== 'open' || this.publicChannels.isPublic(conversationId)) return
    this.indicators?.typed(conversationId)
  }

  /** The agent sees the open customer's conversations to their last message: the customer is told once per message. */
  readonly #seen = () => {
    const open = this.openId ? this.entries.get(this.openId) : undefined
    if (!open || !this.indicators || this.streamState !== 'open') return
    for (const { conversation } of this.customerEntries(open)) {
      if (this.publicChannels.isPublic(conversation.id)) continue
      const last = this.messages.get(conversation.id)?.at(-1)
      this.indicators.seen(conversation.id, last && indicated(last))
    }
  }

  /** The seq of the bank's message the customer read last in the conversation (to mark "Read"), if they said. */
  readMark(conversationId: string): number | undefined {
    return this.indicators?.readMark(conversationId, (this.messages.get(conversationId) ?? []).map(indicated))
  }

  /** Whether the customer of this line is typing in one of their secure conversations. */
  customerTyping(entry: InboxEntry): boolean {
    return this.customerEntries(entry).some((e) => this.indicators?.typing(e.conversation.id) !== undefined)
  }

  /** Follows the pivot links of conversations: called with the conversation whose link changed (or every open one). */
  onPivotChange(listener: (conversationId: string) => void): () => void {
    this.#pivotListeners.add(listener)
    return () => this.#pivotListeners.delete(listener)
  }

  /**
   * Whether the customer's SIM card was swapped recently (the carrier's answer for their phone number on file), so
   * that the agent is warned before sending a link to that number; undefined when unknown (no number, no answer).
   */
  simSwap(customerId: string): Promise<{ swapped: boolean; windowHours: number } | undefined> {
    let answer = this.#simSwaps.get(customerId)
    if (!answer) {
      answer = this.client
        .getCustomer(customerId)
        .then((customer) => (customer.phoneNumber ? this.client.checkSimSwap(customer.phoneNumber) : undefined))
        .catch(() => undefined)
      this.#simSwaps.set(customerId, answer)
    }
    return answer
  }

  async #onUpdate(conversationId: string | null, update: ConversationUpdate): Promise<void> {
    try {
      if (update.kind === 'consent') await this.consents.updated(conversationId, update.consentId)
      else if (conversationId === null) return
      else if (update.kind === 'pivot') for (const listener of this.#pivotListeners) listener(conversationId)
      // Behind the messages already queued, so the earlier parts it masks are shown by the time it is applied.
      else if (update.kind === 'redaction') this.#enqueue(() => this.#onRedaction(conversationId, update.seqs))
      // Behind the messages already queued too, so that a message read elsewhere is counted before it is cleared.
      else if (update.kind === 'markers') this.#enqueue(async () => this.#onMarkers(conversationId, update))
      else if (this.entries.has(conversationId)) {
        this.updateConversation(await this.client.getConversation(conversationId))
      }
    } catch (error) {
      this.problem = `The conversation could not be brought up to date: ${(error as Error).message}. Reload the page.`
      this.#changed()
    }
  }

  /** A member's markers moved: read in another tab or on the phone; this agent's own reading clears its unread count. */
  #onMarkers(conversationId: string, update: Extract<ConversationUpdate, { kind: 'markers' }>): void {
    const entry = this.entries.get(conversationId)
    if (!entry) return
    const { member, deliveredSeq, readSeq } = update
    const members = entry.conversation.members.map((m) =>
      m.kind === member.kind && m.id === member.id ? { ...m, deliveredSeq, readSeq } : m,
    )
    entry.conversation = { ...entry.conversation, members }
    if (member.kind === 'staff' && member.id === this.me.staffId) {
      entry.unread = Math.min(entry.unread, Math.max(0, entry.conversation.lastSeq - readSeq))
    }
    this.#changed()
  }

  /** Messages masked after the fact: what is shown of them (and the inbox preview) is replaced by the masked text. */
  async #onRedaction(conversationId: string, seqs: readonly number[]): Promise<void> {
    const shown = this.messages.get(conversationId)
    const entry = this.entries.get(conversationId)
    if (!shown && entry?.preview === undefined) return
    const reread = await this.publicChannels.reread(conversationId, seqs)
    // New objects, not edits in place: what the screen memoized by message is drawn again.
    shown?.forEach((message, index) => {
      const masked = reread.get(message.seq)
      if (masked) shown[index] = { ...message, text: masked.text, public: masked.details }
    })
    if (entry && shown) entry.preview = previewOf(shown.at(-1))
    else if (entry) entry.preview = undefined
    this.#changed()
  }

  #resync(): void {
    void this.consents.resync().catch(() => undefined)
    if (this.openId) for (const listener of this.#pivotListeners) listener(this.openId)
    // Staff added, moved or deactivated meanwhile were told only to the streams open then.
    if (this.can('conversations:assign')) void this.directory.refresh(true).catch(() => undefined)
    // Behind the messages the stream brings again, as the joins and departures it missed would have been.
    this.#enqueue(() => this.#rereadConversations())
  }

  /**
   * After a break (the node went away, the network dropped): statuses, assignments and memberships changed meanwhile
   * were said only to the streams open then, so the conversations are read again: each shown one brought up to date,
   * one this member joined added, one they left (handed over) removed.
   */
  async #rereadConversations(): Promise<void> {
    const current = await this.#listAllConversations()
    const ids = new Set(current.map((c) => c.id))
    for (const [id, entry] of this.entries) {
      const wasMember = entry.conversation.members.some((m) => m.kind === 'staff' && m.id === this.me.staffId)
      if (wasMember && !ids.has(id)) this.#onLeft(id)
    }
    const joined = current.filter((c) => !this.entries.has(c.id))
    await this.publicChannels.learn(joined.map((c) => c.id))
    for (const conversation of current) {
      const entry = this.entries.get(conversation.id)
      if (entry) entry.conversation = conversation
      else await this.#addConversation(conversation)
    }
    this.#changed()
  }

  /** The inbox, most recent first. */
  inbox(): InboxEntry[] {
    return [...this.entries.values()].sort((a, b) =>
      (b.lastMessageAt ?? b.conversation.createdAt).localeCompare(a.lastMessageAt ?? a.conversation.createdAt),
    )
  }

  /**
   * A pivot's secure conversation this browser cannot encrypt for yet: the customer's browser makes the MLS group when
   * it arrives, and until the console has joined it a reply waits rather than going out in clear.
   */
  awaitingEncryption(conversationId: string): boolean {
    return this.publicChannels.of(conversationId)?.kind === 'secure' && !this.#joined.has(conversationId)
  }

  /** Notes when this browser has joined a pivot's secure conversation (the group's first commit brings the welcome). */
  async #noteJoined(conversationId: string): Promise<void> {
    if (!this.secure || !this.awaitingEncryption(conversationId)) return
    if (await this.secure.isSecure(conversationId)) this.#joined.add(conversationId)
  }

  async open(conversationId: string | undefined): Promise<void> {
    this.openId = conversationId
    this.#changed()
    if (!conversationId) return
    const entry = this.entries.get(conversationId)
    if (!entry) return
    // One timeline per customer: every conversation of theirs on every channel.
    const entries = this.customerEntries(entry)
    for (const other of entries) await this.#loadHistory(other)
    await this.#noteJoined(conversationId)
    for (const other of entries) await this.#markRead(other)
    this.#seen()
    this.#changed()
  }

  async #loadHistory(entry: InboxEntry): Promise<void> {
    const conversationId = entry.conversation.id
    if (this.messages.has(conversationId)) return
    const after = Math.max(0, entry.conversation.lastSeq - HISTORY)
    const history = await this.client.listMessages(conversationId, { after, limit: HISTORY })
    const shown: ShownMessage[] = []
    for (const message of history) {
      const item = await this.#show(message)
      if (item) shown.push(item)
    }
    // Live messages may have arrived while the history loaded: keep both, once each, in order.
    const merged = new Map([...shown, ...(this.messages.get(conversationId) ?? [])].map((m) => [m.seq, m]))
    const list = [...merged.values()].sort((a, b) => a.seq - b.seq)
    this.messages.set(conversationId, list)
    entry.preview ??= previewOf(list.at(-1))
  }

  /** Whether the conversation is in the timeline on screen (the open conversation's customer's). */
  #isShown(entry: InboxEntry): boolean {
    const open = this.openId ? this.entries.get(this.openId) : undefined
    return open !== undefined && this.customerEntries(open).includes(entry)
  }

  /** The inbox lines of the same customer (an unidentified sender's conversation is alone), most recent first. */
  customerEntries(entry: InboxEntry): InboxEntry[] {
    const { customerId } = entry.conversation
    if (customerId === null) return [entry]
    return this.inbox().filter((e) => e.conversation.customerId === customerId)
  }

  /**
   * The customer's messages on every channel and their payment requests, in time order, each with its conversation
   * (see buildTimeline); undefined until the open conversation's messages are loaded.
   */
  timeline(entry: InboxEntry): TimelineItem[] | undefined {
    if (!this.messages.has(entry.conversation.id)) return undefined
    return buildTimeline(
      this.customerEntries(entry).map(({ conversation }) => ({
        conversationId: conversation.id,
        messages: this.messages.get(conversation.id) ?? [],
        consents: this.consents.of(conversation.id),
        securePart: this.publicChannels.of(conversation.id)?.kind === 'secure',
      })),
    )
  }

  /** The inbox's preview of a conversation's last message: asks for it once when the console has not seen it. */
  preview(entry: InboxEntry): string | undefined {
    const id = entry.conversation.id
    if (entry.preview !== undefined || entry.conversation.lastSeq === 0 || this.#previewing.has(id)) {
      return entry.preview
    }
    this.#previewing.add(id)
    this.#enqueue(async () => {
      const seq = entry.conversation.lastSeq
      const [last] = await this.client.listMessages(id, { after: seq - 1, limit: 1 })
      if (entry.preview === undefined) entry.preview = previewOf(last && (await this.#show(last))) ?? ''
      this.#changed()
    })
    return undefined
  }

  /** Marks the conversation open, pending or resolved (the customer's next message reopens it). */
  async setStatus(conversationId: string, status: ConversationStatus): Promise<void> {
    this.updateConversation(await this.desk.setStatus(conversationId, status))
  }

  /** Total unread messages across the inbox (the page title shows it). */
  unreadTotal(): number {
    let total = 0
    for (const entry of this.entries.values()) total += entry.unread
    return total
  }

  /**
   * Sends a file, end-to-end encrypted: only in a secure conversation. Files never go out on a public channel, where
   * anything sent is plaintext at the provider (the composer says so there).
   */
  async sendAttachment(conversationId: string, file: File): Promise<void> {
    if (this.publicChannels.isPublic(conversationId) || !this.secure || !(await this.secure.canSend(conversationId))) {
      throw new Error('files go only to a secure conversation. Invite the customer to the secure chat first.')
    }
    await this.secure.sendAttachment(conversationId, file)
  }

  async send(conversationId: string, text: string): Promise<void> {
    if (this.publicChannels.isPublic(conversationId)) {
      await this.publicChannels.send(conversationId, text)
    } else if (this.secure && (await this.secure.canSend(conversationId))) {
      await this.secure.send(conversationId, text)
      this.indicators?.sent(conversationId)
    } else if (this.awaitingEncryption(conversationId)) {
      throw new Error('the customer’s browser has not set up end-to-end encryption yet. Try again in a moment.')
    } else if (this.#stream) {
      await this.#stream.send(conversationId, { contentType: 'text/plain', ciphertext: new TextEncoder().encode(text) })
    } else {
      await this.client.sendMessage(conversationId, {
        contentType: 'text/plain',
        ciphertext: new TextEncoder().encode(text),
      })
    }
  }

  /** Registers a passkey of this staff member made by this device, to sign in with next time (no token to type). */
  async addPasskey(): Promise<void> {
    const options = await this.client.passkeyRegistrationOptions()
    const credential = await createPasskey(options).catch((error: unknown) => {
      throw new SignInRefused(whyNoPasskey(error))
    })
    await this.client.registerPasskey(credential)
  }

  /**
   * Signs out: a session from the bank's identity provider ends on the server (every token of it), and gives the
   * provider's logout URL where it has one; then the stream closes and the client (with the token) is forgotten.
   */
  async signOut(): Promise<string | undefined> {
    const credentials = this.#credentials
    const ended = credentials instanceof StaffSession ? await credentials.signOut().catch(() => ({})) : {}
    this.close()
    return (ended as { endSessionUrl?: string }).endSessionUrl
  }

  /** Closes the stream and forgets the client (and with it the token). */
  close(): void {
    this.#closed = true
    document.removeEventListener('visibilitychange', this.#seen)
    this.indicators?.close()
    this.#stream?.close()
    this.consents.close()
    this.#listeners.clear()
  }

  /**
   * Adds every conversation of the bank to the inbox, for staff holding conversations:all (a supervisor looking for
   * one to hand over). Those this staff member is not in are as they were when listed: the stream brings news of its
   * own conversations only.
   */
  showTeam(): void {
    this.#enqueue(async () => {
      // New ones, and a fresh look at those this staff member is not in (the stream keeps only its own up to date).
      const conversations = (await this.#listAllConversations('all')).filter((c) => {
        const entry = this.entries.get(c.id)
        return !entry || !this.isMember(entry)
      })
      await this.publicChannels.learn(conversations.map((c) => c.id))
      await Promise.all(conversations.map((c) => this.#addConversation(c)))
      this.#changed()
    })
  }

  /** Adds conversations found elsewhere (a search) that the inbox does not hold yet, as they are now. */
  async addConversations(conversationIds: readonly string[]): Promise<void> {
    const missing = conversationIds.filter((id) => !this.entries.has(id))
    if (missing.length === 0) return
    await this.publicChannels.learn(missing)
    for (const id of missing) await this.#addConversation(await this.client.getConversation(id))
    this.#changed()
  }

  /** Whether this staff member is in the conversation (rather than seeing it as a supervisor). */
  isMember(entry: InboxEntry): boolean {
    return entry.conversation.members.some((m) => m.kind === 'staff' && m.id === this.me.staffId)
  }

  async #listAllConversations(scope: 'member' | 'all' = 'member'): Promise<Conversation[]> {
    const all: Conversation[] = []
    for (let page = await this.client.listConversations({ limit: INBOX_PAGE, scope }); ; ) {
      all.push(...page)
      if (page.length < INBOX_PAGE) return all
      page = await this.client.listConversations({ limit: INBOX_PAGE, scope, before: page.at(-1)?.id as string })
    }
  }

  /** A customer's name, read once per console; their id where it cannot be read (erased, or not this member's to read). */
  customerName(customerId: string): Promise<string> {
    let name = this.#customerNames.get(customerId)
    if (!name) {
      name = this.client.getCustomer(customerId).then(
        (c) => c.displayName,
        () => customerId,
      )
      this.#customerNames.set(customerId, name)
    }
    return name
  }

  /** Taken out of a conversation (transferred to another agent): it leaves the inbox. */
  #onLeft(conversationId: string): void {
    this.entries.delete(conversationId)
    this.messages.delete(conversationId)
    if (this.openId === conversationId) this.openId = undefined
    this.#changed()
  }

  #enqueue(task: () => Promise<void>): void {
    this.#queue = this.#queue.then(task).catch((error: Error) => {
      this.problem = error.message
      this.#changed()
    })
  }

  async #addConversation(conversation: Conversation): Promise<void> {
    const mine = conversation.members.find((m) => m.kind === 'staff' && m.id === this.me.staffId)
    // A public-channel conversation from an unknown sender has no customer until an agent links one.
    const customerName =
      conversation.customerId === null ? 'Unidentified sender' : await this.customerName(conversation.customerId)
    this.entries.set(conversation.id, {
      conversation,
      customerName,
      // Only this staff member's own conversations count as unread (not those it sees with the whole team's).
      unread: mine ? Math.max(0, conversation.lastSeq - mine.readSeq) : 0,
      unreadCountedTo: conversation.lastSeq,
      lastMessageAt: conversation.lastMessageAt ?? undefined,
    })
  }

  async #onJoined(conversationId: string): Promise<void> {
    if (this.entries.has(conversationId)) return
    await this.publicChannels.learn([conversationId])
    await this.#addConversation(await this.client.getConversation(conversationId))
    this.#changed()
  }

  async #onMessage(message: Message): Promise<void> {
    let entry = this.entries.get(message.conversationId)
    if (!entry) {
      await this.#onJoined(message.conversationId)
      entry = this.entries.get(message.conversationId)
      if (!entry) return
    }
    const shown = await this.#show(message)
    if (message.contentType === MLS_CONTENT_TYPE) await this.#noteJoined(message.conversationId)
    entry.conversation = { ...entry.conversation, lastSeq: Math.max(entry.conversation.lastSeq, message.seq) }
    if (shown) {
      entry.lastMessageAt = message.createdAt
      entry.preview = previewOf(shown)
      // The customer's message reopens the conversation (the server did the same as it stored it).
      if (shown.from === 'customer' && entry.conversation.status !== 'open') {
        entry.conversation = { ...entry.conversation, status: 'open' }
      }
      if (shown.from === 'customer') this.onCustomerMessage?.(entry)
      if (message.sender.kind === 'device') this.indicators?.stoppedTyping(message.conversationId)
      const fromMe = shown.from === 'you'
      if (this.#isShown(entry) || fromMe) await this.#markRead(entry)
      else if (message.seq > entry.unreadCountedTo) entry.unread += 1
      entry.unreadCountedTo = Math.max(entry.unreadCountedTo, message.seq)
      const list = this.messages.get(message.conversationId)
      if (list && !list.some((m) => m.seq === message.seq)) list.push(shown)
      if (this.#isShown(entry)) this.#seen()
    }
    this.#changed()
  }

  async #markRead(entry: InboxEntry): Promise<void> {
    entry.unread = 0
    if (entry.conversation.lastSeq > 0) {
      await this.client.markRead(entry.conversation.id, entry.conversation.lastSeq).catch(() => undefined)
    }
  }

  /** What the console shows for a message; undefined for log entries that are not messages (MLS commits). */
  async #show(message: Message): Promise<ShownMessage | undefined> {
    const from =
      message.sender.kind === 'staff' && message.sender.id === this.me.staffId
        ? 'you'
        : message.sender.kind === 'device' || message.sender.kind === 'channel'
          ? 'customer'
          : message.sender.kind
    const base = { seq: message.seq, id: message.id, from, createdAt: message.createdAt } as const
    if (message.contentType === 'text/plain') {
      return { ...base, text: textDecoder.decode(base64ToBytes(message.ciphertext)) }
    }
    if (isPublicChannelMessage(message)) {
      const read = await this.publicChannels.read(message)
      if (!read) return { ...base, text: undefined, placeholder: 'A public-channel message that could not be opened' }
      // History a pivot imported keeps the time it was written; a message received here is placed when it arrived
      // (a provider's own timestamp may be whole seconds, which would put it before what followed it).
      const createdAt = read.details.imported ? read.details.at : base.createdAt
      return { ...base, createdAt, text: read.text, public: read.details }
    }
    if (message.contentType === MLS_CONTENT_TYPE) {
      if (!this.secure) return { ...base, text: undefined, placeholder: 'Encrypted message' }
      const read = await this.secure.read(message)
      if (!read) return undefined
      if (!('text' in read)) return { ...base, text: undefined, placeholder: read.placeholder }
      return { ...base, text: read.text, ...(read.attachment ? { attachment: read.attachment } : {}) }
    }
    return { ...base, text: undefined, placeholder: `A ${message.contentType} message this console cannot show` }
  }
}

/** A shown message as the indicators see it: the bank's messages (this agent's or a colleague's) are this side's. */
function indicated(message: ShownMessage): IndicatedMessage {
  return { seq: message.seq, id: message.id, mine: message.from === 'you' || message.from === 'staff' }
}

/** A message as the inbox previews it: its first line, or what stands for it. */
function previewOf(message: ShownMessage | undefined): string | undefined {
  if (!message) return undefined
  return (message.text ?? message.placeholder ?? '').split('\n')[0]?.slice(0, 120)
}
