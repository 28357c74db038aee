import { base64ToBytes, type Message, type StrongroomClient } from '@strongroom/sdk'
import { browserCryptoProvider, MLS_CONTENT_TYPE, SecureMessaging, type SecureStore } from '@strongroom/sdk/mls'

/** What a page shows of a secure message: its text (and when it disappears), or why it cannot show it. */
export type ReadMessage = { text: string; expiresAt: string | null } | { placeholder: string }

const expired = (message: Pick<Message, 'expiresAt'>) =>
  message.expiresAt !== null && Date.parse(message.expiresAt) <= Date.now()

/**
 * A browser as an MLS member of its secure conversations: the agent's console, or the customer's secure chat. MLS keys
 * move forward with every message, so a message can be decrypted once only: the SDK keeps what this browser read (and
 * sent) in the same encrypted store as the group state, until the message expires, to show it again after a reload.
 */
export class BrowserMlsMember {
  readonly messaging: SecureMessaging
  readonly #self: { kind: 'staff' | 'device'; id: string }
  /** Conversations this browser asked to be added to, once each while the page is open. */
  readonly #asked = new Set<string>()

  private constructor(messaging: SecureMessaging, self: { kind: 'staff' | 'device'; id: string }) {
    this.messaging = messaging
    this.#self = self
  }

  static async open(
    client: StrongroomClient,
    options: { store: SecureStore; self: { kind: 'staff' | 'device'; id: string } },
  ): Promise<BrowserMlsMember> {
    const messaging = await SecureMessaging.open(client, {
      provider: browserCryptoProvider,
      store: options.store,
      keepTexts: true,
    })
    const member = new BrowserMlsMember(messaging, options.self)
    await messaging.acceptWelcomes()
    return member
  }

  async isSecure(conversationId: string): Promise<boolean> {
    if (await this.messaging.isMember(conversationId)) return true
    await this.messaging.acceptWelcomes()
    return this.messaging.isMember(conversationId)
  }

  /** What to show for a message/mls message; undefined for a commit, or a message that has expired. */
  async read(message: Message): Promise<ReadMessage | undefined> {
    if (expired(message)) return undefined
    // Our own message echoed by the stream while send() is under way: keptText waits for the send, which keeps it.
    const kept = await this.#kept(message)
    if (kept !== undefined) return kept ?? undefined
    if (message.sender.kind === this.#self.kind && message.sender.id === this.#self.id) {
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

  /** Encrypts and sends; the message comes back on the stream, where `read` shows the text the SDK kept. */
  async send(conversationId: string, text: string, options: { expiresAt?: Date } = {}): Promise<void> {
    await this.messaging.send(conversationId, text, options)
  }

  /** What the SDK kept of a message: undefined when nothing, null when it has nothing to show (a resend request). */
  async #kept(message: Message): Promise<ReadMessage | null | undefined> {
    const kept = await this.messaging.keptText(message.conversationId, message.seq)
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
