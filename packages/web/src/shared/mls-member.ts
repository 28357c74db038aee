import {
  type AttachmentRef,
  attachmentMessage,
  base64ToBytes,
  downloadAttachment,
  type MemberClient,
  type Message,
  type MessageStream,
  type ReceivedSignal,
  readAttachmentMessage,
  uploadAttachment,
} from '@strongroom/sdk'
import {
  browserCryptoProvider,
  fetchSecureHistory,
  MLS_CONTENT_TYPE,
  SecureGroupError,
  SecureMessaging,
  type SecureStore,
  type Signal,
  type SignalEvent,
} from '@strongroom/sdk/mls'

/**
 * What a page shows of a secure message: its text (and when it disappears), with the attachment it hands over if it
 * is one; or why it cannot show it.
 */
export type ReadMessage =
  | { text: string; expiresAt: string | null; attachment?: AttachmentRef }
  | { placeholder: string }

/** How often, and how long apart (growing), a browser asks the archive again for a message it has not read yet. */
const ARCHIVE_RETRIES = 5
const ARCHIVE_WAIT_MS = 250

const expired = (message: Pick<Message, 'expiresAt'>) =>
  message.expiresAt !== null && Date.parse(message.expiresAt) <= Date.now()

/**
 * A browser as an MLS member of its secure conversations: the agent's console, or the customer's secure chat. MLS keys
 * move forward with every message, so a message can be decrypted once only: the SDK keeps what this browser read (and
 * sent) in the same encrypted store as the group state, until the message expires, to show it again after a reload.
 */
export class BrowserMlsMember {
  readonly messaging: SecureMessaging
  readonly #client: MemberClient
  readonly #self: { kind: 'staff' | 'device'; id: string }
  /** Conversations this browser asked to be added to, once each while the page is open. */
  readonly #asked = new Set<string>()
  /** Per conversation, the earlier messages the archive sealed to this browser, and the last seq it gave. */
  readonly #earlier = new Map<string, Promise<{ texts: Map<number, string>; through: number }>>()

  private constructor(
    client: MemberClient,
    messaging: SecureMessaging,
    self: { kind: 'staff' | 'device'; id: string },
  ) {
    this.#client = client
    this.messaging = messaging
    this.#self = self
  }

  static async open(
    client: MemberClient,
    options: { store: SecureStore; self: { kind: 'staff' | 'device'; id: string } },
  ): Promise<BrowserMlsMember> {
    const messaging = await SecureMessaging.open(client, {
      provider: browserCryptoProvider,
      store: options.store,
      keepTexts: true,
    })
    const member = new BrowserMlsMember(client, messaging, options.self)
    await messaging.acceptWelcomes()
    return member
  }

  async isSecure(conversationId: string): Promise<boolean> {
    if (await this.messaging.isMember(conversationId)) return true
    await this.messaging.acceptWelcomes()
    return this.messaging.isMember(conversationId)
  }

  /**
   * What to show for a message/mls message; undefined for a commit, or a message that has expired. Staff see what this
   * browser cannot decrypt (sent before it joined, on another browser, or before a hand-over) from the bank's archive.
   */
  async read(message: Message): Promise<ReadMessage | undefined> {
    const read = await this.#readAny(message)
    const attachment = read && 'text' in read ? readAttachmentMessage(read.text) : undefined
    // An attachment's message is its reference (with its key): the page shows the file, never that text.
    return attachment && read ? { ...read, text: `Attachment: ${attachment.name}`, attachment } : read
  }

  async #readAny(message: Message): Promise<ReadMessage | undefined> {
    const here = await this.#readHere(message)
    if (!here || !('placeholder' in here)) return here
    // A commit carries no text: nothing to show, whether or not this browser could read it.
    if (!isApplicationMessage(message)) return undefined
    if (this.#self.kind !== 'staff') return here
    const text = await this.#fromArchive(message)
    return text === undefined ? here : { text, expiresAt: message.expiresAt }
  }

  async #readHere(message: Message): Promise<ReadMessage | undefined> {
    if (expired(message)) return undefined
    // Our own message echoed by the stream while send() is under way: keptText waits for the send, which keeps it.
    const kept = await this.#kept(message)
    if (kept !== undefined) return kept ?? undefined
    // A staff member's other browsers are leaves of their own, read like anyone else's.
    if (this.#self.kind === 'device' && message.sender.kind === 'device' && message.sender.id === this.#self.id) {
      // Our own commit has no text; our own message without a kept text was sent from another session.
      return isApplicationMessage(message) ? { placeholder: 'Encrypted message sent from another session' } : undefined
    }
    if (!(await this.messaging.isMember(message.conversationId))) await this.messaging.acceptWelcomes()
    if (!(await this.messaging.isMember(message.conversationId))) {
      // Not in the group yet (a conversation handed over to this agent, a new browser): asks once to be added; the
      // archive member adds a member of the conversation, and later messages read after its welcome.
      // In the background: showing this message (and the ones after it) does not wait for the request.
      if (!this.#asked.has(message.conversationId)) {
        this.#asked.add(message.conversationId)
        void this.messaging.sync(message.conversationId).catch(() => undefined)
      }
      return { placeholder: 'Encrypted message (this browser is not a member of the conversation yet)' }
    }
    await this.messaging.receive(message)
    const read = await this.#kept(message)
    if (read !== undefined) return read ?? undefined
    // Commits and other protocol messages carry no text to show.
    return isApplicationMessage(message) ? { placeholder: 'Encrypted message this browser cannot read' } : undefined
  }

  /**
   * An earlier message's text from the archive (sealed to a key this browser made for the request), fetched once per
   * conversation and again for a message after the last it gave. The archive member reads each message a moment after
   * it is stored, so a message just sent is waited for a little; undefined when the archive has no text for it.
   */
  async #fromArchive(message: Message): Promise<string | undefined> {
    const { conversationId, seq } = message
    for (let attempt = 0; attempt <= ARCHIVE_RETRIES; attempt++) {
      const known = await this.#earlier.get(conversationId)
      if (known?.texts.has(seq)) return known.texts.get(seq)
      if (known && seq <= known.through) return undefined
      if (known) await new Promise((resolve) => setTimeout(resolve, ARCHIVE_WAIT_MS * attempt))
      this.#earlier.set(conversationId, this.#fetchEarlier(conversationId, known))
    }
    return (await this.#earlier.get(conversationId))?.texts.get(seq)
  }

  async #fetchEarlier(
    conversationId: string,
    known: { texts: Map<number, string>; through: number } | undefined,
  ): Promise<{ texts: Map<number, string>; through: number }> {
    const texts = new Map(known?.texts)
    let through = known?.through ?? 0
    try {
      for (let after: number | null = through; after !== null; ) {
        const page = await fetchSecureHistory(this.#client, conversationId, { after })
        for (const m of page.messages) texts.set(m.seq, m.text)
        through = page.messages.at(-1)?.seq ?? through
        after = page.next
      }
    } catch {
      // Not a member of the conversation (any more), or no archive on this node: nothing to show from it.
    }
    return { texts, through }
  }

  /**
   * Whether this browser can send in the conversation: it is a member, or it is an agent's browser that was taken out
   * of the group while the agent is still in the conversation (sending asks for it to be added back).
   */
  async canSend(conversationId: string): Promise<boolean> {
    if (await this.isSecure(conversationId)) return true
    return this.#self.kind === 'staff' && (await this.messaging.wasRemoved(conversationId))
  }

  /**
   * Encrypts and sends; the message comes back on the stream, where `read` shows the text the SDK kept. An agent's
   * browser taken out of the group re-joins first (asking the archive to add it, when it has no leaf left): the agent
   * chose to go on here. What it missed meanwhile shows from the archive.
   */
  async send(conversationId: string, text: string, options: { expiresAt?: Date } = {}): Promise<void> {
    const replaced = async () => this.#self.kind === 'staff' && (await this.messaging.wasRemoved(conversationId))
    if (await replaced()) await this.messaging.rejoin(conversationId)
    try {
      await this.messaging.send(conversationId, text, options)
    } catch (error) {
      // Taken out while this message was on its way (the send caught up and found the commit): it never left, so it
      // goes again, once, after re-joining.
      if (!(error instanceof SecureGroupError && error.code === 'removed' && (await replaced()))) throw error
      await this.messaging.rejoin(conversationId)
      await this.messaging.send(conversationId, text, options)
    }
  }

  /**
   * Encrypts a file in this browser with a fresh key, uploads the ciphertext, and sends its reference (with the key)
   * to the group as a message: the server never holds the key; the members and the bank's archive do.
   */
  async sendAttachment(conversationId: string, file: File, options: { expiresAt?: Date } = {}): Promise<void> {
    const bytes = new Uint8Array(await file.arrayBuffer())
    const ref = await uploadAttachment(
      this.#client,
      conversationId,
      { name: file.name, type: file.type, bytes },
      options,
    )
    await this.send(conversationId, attachmentMessage(ref), options)
  }

  /** An attachment of the conversation, downloaded, checked and decrypted here. */
  openAttachment(conversationId: string, attachment: AttachmentRef): Promise<Uint8Array<ArrayBuffer>> {
    return downloadAttachment(this.#client, conversationId, attachment)
  }

  /** Sends this browser's messages over its open stream, pipelined, instead of one HTTP request each. */
  sendOver(stream: MessageStream | undefined): void {
    this.messaging.sendOver(stream)
  }

  /** Sends a typing or read indicator to the members connected now (see `ConversationIndicators`). */
  signal(conversationId: string, signal: Signal): Promise<boolean> {
    return this.messaging.signal(conversationId, signal)
  }

  /** Reads another member's typing or read indicator; undefined for anything this browser cannot take for one. */
  readSignal(received: ReceivedSignal): Promise<SignalEvent | undefined> {
    return this.messaging.readSignal(received)
  }

  /** What the SDK kept of a message: undefined when nothing, null when it has nothing to show (a resend request). */
  async #kept(message: Message): Promise<ReadMessage | null | undefined> {
    const kept = await this.messaging.keptText(message.conversationId, message.seq, message.clientMessageId)
    if (!kept) return undefined
    if (kept.kind === 'control') return null
    if (kept.kind === 'text') return { text: kept.text, expiresAt: message.expiresAt }
    return {
      placeholder: kept.resendRequested
        ? 'A message that could not be decrypted: this browser asked for it again, and it shows below when it comes'
        : 'A message that could not be decrypted',
    }
  }
}

/** An MLS PrivateMessage (application data) rather than a commit, by its wire format field. */
function isApplicationMessage(message: Message): boolean {
  if (message.contentType !== MLS_CONTENT_TYPE) return false
  const bytes = base64ToBytes(message.ciphertext)
  // MLSMessage: version (uint16) then wire_format (uint16); 2 is mls_private_message.
  return bytes.length > 4 && bytes[2] === 0 && bytes[3] === 2
}
