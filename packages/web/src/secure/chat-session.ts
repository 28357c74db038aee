import {
  type AttachmentRef,
  type ConsentRequest,
  consentPasskeyChallenge,
  type DeviceClient,
  IMPORTED_HISTORY_TYPE,
  type Message,
  type MessageStream,
  type PublicMessage,
  problemKind,
  type StreamState,
  type StrongroomError,
} from '@strongroom/sdk'
import { type BrowserDevice, MLS_CONTENT_TYPE } from '@strongroom/sdk/mls'
import { ConversationIndicators } from '../shared/indicators.ts'
import { BrowserMlsMember } from '../shared/mls-member.ts'
import { createPasskey, getPasskeyAssertion } from '../shared/passkey.ts'

/** A secure message as the customer sees it. */
export interface ChatMessage {
  seq: number
  /** The message's id in the log (a read indicator names it). */
  id: string
  from: 'you' | 'bank'
  /** The text, or undefined when it cannot be shown (then `placeholder` says why). */
  text: string | undefined
  placeholder?: string
  /** The file this message hands over (encrypted on the server; this browser decrypts it to show it). */
  attachment?: AttachmentRef
  createdAt: string
  expiresAt: string | null
}

/** A payment the bank asks the customer to confirm, and where the customer's answer is. */
export interface ConsentCard {
  consent: ConsentRequest
  state: 'pending' | 'busy' | 'approved' | 'declined' | 'expired'
  /** The bank's policy asks for a code on top of this browser's signature. */
  needsCode?: 'sms-otp' | 'totp'
  /**
   * No code can be texted (the SIM card was swapped recently): the customer's passkey approves instead, or, without
   * one, the card says how to go on.
   */
  simSwapped?: { passkey: boolean }
  error?: string
}

/** Whether this browser can read and write the conversation yet. */
export type JoinState = 'joining' | 'waiting' | 'ready'

const WELCOME_POLL_MS = 3_000
const HISTORY = 200

/**
 * The customer's secure conversation in this browser: the public history the pivot imported, the end-to-end
 * encrypted messages (this browser is an MLS member), the consent requests to answer, and messages that disappear at
 * their expiry. Kept live from the stream; the page re-renders on every change.
 */
export class ChatSession {
  readonly client: DeviceClient
  readonly conversationId: string
  readonly deviceId: string
  history: PublicMessage[] = []
  messages: ChatMessage[] = []
  readonly consents = new Map<string, ConsentCard>()
  joinState: JoinState = 'joining'
  streamState: StreamState = 'connecting'
  problem: string | undefined
  readonly #device: BrowserDevice
  #member: BrowserMlsMember | undefined
  /** The bank's typing and read indicators, and this customer's. */
  indicators: ConversationIndicators | undefined
  #stream: MessageStream | undefined
  #listeners = new Set<() => void>()
  #timers: ReturnType<typeof setInterval>[] = []
  #expiryTimer: ReturnType<typeof setTimeout> | undefined
  #closed = false
  /** Stream events are handled one at a time, in the order they came. */
  #queue: Promise<void> = Promise.resolve()

  constructor(client: DeviceClient, device: BrowserDevice, conversationId: string) {
    this.client = client
    this.#device = device
    this.conversationId = conversationId
    this.deviceId = device.enrolment?.deviceId as string
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  #changed(): void {
    if (!this.#closed) for (const listener of this.#listeners) listener()
  }

  /** Loads what is there (history first: it shows at once), joins the encrypted group, then follows live. */
  async start(): Promise<void> {
    this.history = (await this.client.listPublicMessages(this.conversationId, { limit: 1000 })).filter(
      (m) => m.imported,
    )
    this.#changed()
    this.#member = await BrowserMlsMember.open(this.client, {
      store: this.#device.store,
      self: { kind: 'device', id: this.deviceId },
    })
    this.indicators = new ConversationIndicators(
      this.#member,
      (sender) => sender.kind === 'staff',
      () => this.#changed(),
    )
    await this.#join()
    const log = await this.client.listMessages(this.conversationId, { after: 0, limit: HISTORY })
    for (const message of log) await this.#show(message)
    this.#changed()
    if (this.#closed) return
    this.#stream = this.client.stream({
      cursors: { [this.conversationId]: log.at(-1)?.seq ?? 0 },
      onMessage: (message) => this.#enqueue(() => this.#onMessage(message)),
      // Not queued behind messages: an indicator is of the moment.
      onSignal: (signal) => void this.indicators?.received(signal),
      onUpdate: (_conversationId, update) => {
        if (update.kind === 'consent') this.#enqueue(() => this.#onConsentUpdate(update.consentId))
      },
      onStateChange: (state) => {
        // Back after a break: payment requests asked or decided meanwhile are read again (updates are not replayed).
        if (state === 'open' && this.streamState === 'reconnecting') this.#enqueue(() => this.#refreshConsents())
        this.streamState = state
        // What the customer read while the stream was not open is said now.
        if (state === 'open') this.#seen()
        this.#changed()
      },
      onError: (error) => {
        this.problem = error.message
        this.#changed()
      },
    })
    this.#member.sendOver(this.#stream)
    document.addEventListener('visibilitychange', this.#seen)
    await this.#refreshConsents()
    // What expired while the page was closed goes now; what expires while it is open goes at its time.
    this.#timers.push(setInterval(() => void this.#device.store.purgeExpired?.(new Date()), 60_000))
    this.#scheduleExpiry()
  }

  close(): void {
    this.#closed = true
    document.removeEventListener('visibilitychange', this.#seen)
    this.indicators?.close()
    this.#stream?.close()
    for (const timer of this.#timers) clearInterval(timer)
    clearTimeout(this.#expiryTimer)
    this.#listeners.clear()
  }

  /** Sends a message, end-to-end encrypted; it shows when the stream brings it back. */
  async send(text: string): Promise<void> {
    if (!this.#member || this.joinState !== 'ready') throw new Error('the conversation is not ready yet')
    await this.#member.send(this.conversationId, text)
    this.indicators?.sent(this.conversationId)
  }

  /** The customer is typing: the bank's side is told (paced). */
  typed(): void {
    if (this.joinState === 'ready' && this.streamState === 'open') this.indicators?.typed(this.conversationId)
  }

  /** The customer sees the chat up to its last message: the bank's side is told once per message. */
  readonly #seen = () => {
    if (this.streamState !== 'open' || this.joinState !== 'ready') return
    const last = this.messages.at(-1)
    this.indicators?.seen(this.conversationId, last && { seq: last.seq, id: last.id, mine: last.from === 'you' })
  }

  /** The seq of the customer's message to mark "Read" (the bank has read up to it), if any. */
  readMark(): number | undefined {
    const messages = this.messages.map((m) => ({ seq: m.seq, id: m.id, mine: m.from === 'you' }))
    return this.indicators?.readMark(this.conversationId, messages)
  }

  /** Encrypts a file here and sends it; it shows when the stream brings its message back. */
  async sendAttachment(file: File): Promise<void> {
    if (!this.#member || this.joinState !== 'ready') throw new Error('the conversation is not ready yet')
    await this.#member.sendAttachment(this.conversationId, file)
  }

  /** A file a message handed over, downloaded, checked and decrypted in this browser. */
  openAttachment(attachment: AttachmentRef): Promise<Uint8Array<ArrayBuffer>> {
    if (!this.#member) throw new Error('the conversation is not ready yet')
    return this.#member.openAttachment(this.conversationId, attachment)
  }

  /**
   * Joins the conversation's MLS group: by the welcome another member left, or, when the conversation has no group
   * yet (the first pivot), by making it with the bank's archive and every other member that can be added. If another
   * member's group exists without this browser in it, it asks to be added and waits for the welcome.
   */
  async #join(): Promise<void> {
    const member = this.#member as BrowserMlsMember
    if (await member.isSecure(this.conversationId)) {
      this.joinState = 'ready'
      return
    }
    if (!(await this.client.getSecureGroup(this.conversationId))) {
      const conversation = await this.client.getConversation(this.conversationId)
      const others = conversation.members.filter((m) => !(m.kind === 'device' && m.id === this.deviceId))
      try {
        await member.messaging.createGroup(this.conversationId, [{ kind: 'archive', id: 'archive' }], {
          ifAvailable: others.map((m) => ({ kind: m.kind, id: m.id })),
        })
        this.joinState = 'ready'
        return
      } catch (error) {
        // Another member made the group first: this browser is added by them, like a later device.
        if (problemKind(error) !== 'e2e/group-exists') throw error
      }
    }
    this.joinState = 'waiting'
    // The group exists without this browser (a later pivot, another member made it first): it asks to be added, which
    // the bank's archive member does at once, then takes the welcome.
    this.#enqueue(async () => {
      await member.messaging.sync(this.conversationId)
    })
    this.#timers.push(setInterval(() => this.#enqueue(() => this.#acceptWelcome()), WELCOME_POLL_MS))
  }

  async #acceptWelcome(): Promise<void> {
    if (this.joinState !== 'waiting' || !(await this.#member?.isSecure(this.conversationId))) return
    this.joinState = 'ready'
    this.#changed()
  }

  #enqueue(task: () => Promise<void>): void {
    this.#queue = this.#queue.then(task).catch((error: Error) => {
      this.problem = error.message
      this.#changed()
    })
  }

  async #onMessage(message: Message): Promise<void> {
    if (message.conversationId !== this.conversationId) return
    if (message.contentType === IMPORTED_HISTORY_TYPE) {
      // A later pivot imported more of the public thread.
      this.history = (await this.client.listPublicMessages(this.conversationId, { limit: 1000 })).filter(
        (m) => m.imported,
      )
    } else {
      if (this.joinState === 'waiting') await this.#acceptWelcome()
      await this.#show(message)
      if (message.sender.kind === 'staff') this.indicators?.stoppedTyping(this.conversationId)
      this.#seen()
    }
    this.#scheduleExpiry()
    this.#changed()
  }

  async #show(message: Message): Promise<void> {
    if (message.contentType !== MLS_CONTENT_TYPE || !this.#member || this.joinState !== 'ready') return
    if (this.messages.some((m) => m.seq === message.seq)) return
    const read = await this.#member.read(message)
    if (!read) return
    const mine = message.sender.kind === 'device' && message.sender.id === this.deviceId
    this.messages.push({
      seq: message.seq,
      id: message.id,
      from: mine ? 'you' : 'bank',
      text: 'text' in read ? read.text : undefined,
      ...('placeholder' in read ? { placeholder: read.placeholder } : {}),
      ...('attachment' in read && read.attachment ? { attachment: read.attachment } : {}),
      createdAt: message.createdAt,
      expiresAt: message.expiresAt,
    })
    this.messages.sort((a, b) => a.seq - b.seq)
  }

  /** Removes what has expired and wakes up again at the next expiry. */
  #scheduleExpiry(): void {
    clearTimeout(this.#expiryTimer)
    const now = Date.now()
    const before = this.messages.length
    this.messages = this.messages.filter((m) => m.expiresAt === null || Date.parse(m.expiresAt) > now)
    if (this.messages.length !== before) this.#changed()
    const next = Math.min(
      ...this.messages.map((m) => (m.expiresAt ? Date.parse(m.expiresAt) : Number.POSITIVE_INFINITY)),
    )
    if (Number.isFinite(next))
      this.#expiryTimer = setTimeout(() => this.#scheduleExpiry(), Math.max(0, next - now) + 10)
  }

  /** New requests become cards; a pending card whose request was decided elsewhere or expired says so. */
  async #refreshConsents(): Promise<void> {
    const pending = await this.client.listPendingConsents()
    const ids = new Set(pending.map((c) => c.id))
    for (const consent of pending) {
      if (!this.consents.has(consent.id)) this.consents.set(consent.id, { consent, state: 'pending' })
    }
    for (const card of this.consents.values()) {
      if (card.state !== 'pending' || ids.has(card.consent.id)) continue
      const current = await this.client.getConsent(card.consent.id)
      if (current.status !== 'pending') this.#settle(card, current)
    }
    this.#changed()
  }

  /** A payment request asked, or decided elsewhere (another device, an SMS reply), as the stream said. */
  async #onConsentUpdate(consentId: string): Promise<void> {
    const consent = await this.client.getConsent(consentId)
    const card = this.consents.get(consentId)
    if (!card) {
      if (consent.status === 'pending') this.consents.set(consentId, { consent, state: 'pending' })
    } else if (card.state !== 'busy') this.#settle(card, consent)
    this.#changed()
  }

  #settle(card: ConsentCard, consent: ConsentRequest): void {
    card.consent = consent
    card.state = consent.status === 'pending' ? 'pending' : consent.status
    card.needsCode = undefined
    card.simSwapped = undefined
    card.error = undefined
  }

  /**
   * Approves with this browser's device key, which signs exactly the amount, payee and reference shown. When the
   * bank's policy asks for more, or lets browsers approve only by passkey (production), a passkey (with the user
   * verified) approves instead; without one, a code where the policy allows it.
   */
  async approve(consentId: string, code?: string): Promise<void> {
    const card = this.consents.get(consentId)
    if (card?.state !== 'pending') return
    card.state = 'busy'
    card.error = undefined
    this.#changed()
    try {
      const codes = code === undefined ? {} : card.needsCode === 'totp' ? { totpCode: code } : { smsCode: code }
      this.#settle(card, await this.client.approveConsent(card.consent, codes))
    } catch (error) {
      const type = problemKind(error)
      if (type === 'auth/step-up-required' && code === undefined) {
        await this.#stepUp(card, (error as StrongroomError).problem.detail ?? '')
      } else if (type === 'integrity/web-device-refused') {
        // Where the bank requires app integrity, a browser approves with a user-verified passkey only: one it holds,
        // or one it makes now (the browser asks the customer to create it), which binds this browser to a passkey.
        await this.#stepUp(card, 'passkey', { createIfNone: true })
      } else {
        this.#refused(card, error)
      }
    }
    this.#changed()
  }

  async #stepUp(card: ConsentCard, needed: string, options: { createIfNone?: boolean } = {}): Promise<void> {
    let passkeys = await this.client.listPasskeys().catch(() => [])
    if (passkeys.length === 0 && options.createIfNone) {
      try {
        await this.client.registerPasskey(await createPasskey(await this.client.passkeyRegistrationOptions()))
        passkeys = await this.client.listPasskeys()
      } catch (error) {
        this.#refused(card, error)
        return
      }
    }
    if (passkeys.length > 0) {
      try {
        const assertion = await getPasskeyAssertion({
          challenge: await consentPasskeyChallenge(card.consent),
          userVerification: 'required',
          allowCredentials: passkeys.map((p) => ({ id: p.credentialId, type: 'public-key', transports: p.transports })),
        })
        this.#settle(card, await this.client.approveConsentWithPasskey(card.consent.id, assertion))
      } catch (error) {
        this.#refused(card, error)
      }
      return
    }
    card.state = 'pending'
    if (/passkey/.test(needed)) {
      // Nothing else stands in for a passkey the policy names.
      card.error = 'This payment needs your passkey. Approve it in your bank’s app, where your passkey is.'
      return
    }
    if (/totp/.test(needed)) {
      card.needsCode = 'totp'
      return
    }
    card.needsCode = 'sms-otp'
    try {
      await this.client.sendSmsCode()
    } catch (error) {
      this.#refused(card, error)
    }
  }

  /** The card's "Use my passkey" after a SIM swap stopped the text message code. */
  async approveWithPasskey(consentId: string): Promise<void> {
    const card = this.consents.get(consentId)
    if (card?.state !== 'pending') return
    card.state = 'busy'
    card.error = undefined
    this.#changed()
    await this.#stepUp(card, 'passkey', { createIfNone: true })
    if (card.state === 'busy') card.state = 'pending'
    this.#changed()
  }

  /**
   * Declines. `notMe`: the customer did not ask for this payment ("This wasn't me"): the bank's fraud team is told,
   * and with `blockPayee` further requests to this payee are refused.
   */
  async decline(consentId: string, report: { notMe?: boolean; blockPayee?: boolean } = {}): Promise<void> {
    const card = this.consents.get(consentId)
    if (card?.state !== 'pending') return
    card.state = 'busy'
    card.error = undefined
    this.#changed()
    try {
      const options = report.notMe ? { fraud: true, ...(report.blockPayee ? { blockPayee: true } : {}) } : {}
      this.#settle(card, await this.client.declineConsent(consentId, options))
    } catch (error) {
      this.#refused(card, error)
    }
    this.#changed()
  }

  #refused(card: ConsentCard, error: unknown): void {
    const type = problemKind(error)
    if (type === 'consent/expired') {
      card.state = 'expired'
      return
    }
    card.state = 'pending'
    if (type === 'risk/sim-swapped' || type === 'risk/sim-swap-unavailable') {
      // No code can go to this phone now: the passkey approves instead (one is made here if the customer has none).
      card.needsCode = undefined
      card.simSwapped = { passkey: 'PublicKeyCredential' in globalThis }
      card.error = undefined
      return
    }
    card.error =
      type === 'auth/invalid-code'
        ? 'That code is not right. Check the message and try again.'
        : type === 'consent/signature-invalid'
          ? 'The approval could not be verified. Try again.'
          : type === 'consent/already-decided'
            ? 'This payment was already answered.'
            : error instanceof DOMException
              ? 'The passkey was not used. Try again when you are ready.'
              : 'Something went wrong. Try again.'
  }
}
