import { base64ToBytes, type Message, type StrongroomClient } from '@strongroom/sdk'
import {
  browserCryptoProvider,
  MLS_CONTENT_TYPE,
  type SecureEvent,
  SecureMessaging,
  type SecureStore,
} from '@strongroom/sdk/mls'

/** What a page shows of a secure message: its text (and when it disappears), or why it cannot show it. */
export type ReadMessage = { text: string; expiresAt: string | null } | { placeholder: string }

// What is kept per message: 1 then the text's bytes, or 0 alone for a message that could not be decrypted.
const UNREADABLE = new Uint8Array([0])
const readable = (bytes: Uint8Array) => {
  const kept = new Uint8Array(bytes.length + 1)
  kept[0] = 1
  kept.set(bytes, 1)
  return kept
}
const textKey = (conversationId: string, seq: number) => `text/${conversationId}/${seq}`
const expiryOf = (expiresAt: string | null | undefined) => (expiresAt ? { expiresAt: new Date(expiresAt) } : {})
const expired = (message: Pick<Message, 'expiresAt'>) =>
  message.expiresAt !== null && Date.parse(message.expiresAt) <= Date.now()

/**
 * A browser as an MLS member of its secure conversations: the agent's console, or the customer's secure chat. MLS keys
 * move forward with every message, so a message can be decrypted once only: the member keeps what it read (and what
 * it sent) in the same encrypted store as the group state, to show the conversation again after a reload, and keeps
 * it no longer than the message's expiry.
 */
export class BrowserMlsMember {
  readonly messaging: SecureMessaging
  readonly #store: SecureStore
  readonly #self: { kind: 'staff' | 'device'; id: string }
  readonly #sending = new Set<Promise<unknown>>()

  private constructor(messaging: SecureMessaging, store: SecureStore, self: { kind: 'staff' | 'device'; id: string }) {
    this.messaging = messaging
    this.#store = store
    this.#self = self
  }

  static async open(
    client: StrongroomClient,
    options: { store: SecureStore; self: { kind: 'staff' | 'device'; id: string } },
  ): Promise<BrowserMlsMember> {
    let member: BrowserMlsMember | undefined
    const messaging = await SecureMessaging.open(client, {
      provider: browserCryptoProvider,
      store: options.store,
      onEvent: (event) => member?.keep(event),
    })
    member = new BrowserMlsMember(messaging, options.store, options.self)
    await messaging.acceptWelcomes()
    return member
  }

  /** Keeps the text of every message read, whichever call read it (a catch-up reads several at once). */
  async keep(event: SecureEvent): Promise<void> {
    if (event.kind === 'message') {
      await this.#store.set(textKey(event.conversationId, event.seq), readable(event.bytes), expiryOf(event.expiresAt))
    }
    if (event.kind === 'unreadable') await this.#store.set(textKey(event.conversationId, event.seq), UNREADABLE)
  }

  async isSecure(conversationId: string): Promise<boolean> {
    if (await this.messaging.isMember(conversationId)) return true
    await this.messaging.acceptWelcomes()
    return this.messaging.isMember(conversationId)
  }

  /** What to show for a message/mls message; undefined for a commit, or a message that has expired. */
  async read(message: Message): Promise<ReadMessage | undefined> {
    if (expired(message)) return undefined
    const kept = await this.#kept(message)
    if (kept) return kept
    if (message.sender.kind === this.#self.kind && message.sender.id === this.#self.id) {
      // Our own message, echoed by the stream before send() stored its text (or our own commit, which has none).
      await Promise.allSettled([...this.#sending])
      const own = await this.#kept(message)
      if (own || !isApplicationMessage(message)) return own
      return { placeholder: 'Encrypted message sent from another session' }
    }
    if (!(await this.messaging.isMember(message.conversationId))) await this.messaging.acceptWelcomes()
    if (!(await this.messaging.isMember(message.conversationId))) {
      return { placeholder: 'Encrypted message (this browser is not a member of the conversation)' }
    }
    await this.messaging.receive(message)
    const read = await this.#kept(message)
    if (read) return read
    // Commits and other protocol messages carry no text to show.
    return isApplicationMessage(message) ? { placeholder: 'Encrypted message this browser cannot read' } : undefined
  }

  /** Encrypts and sends; the message comes back on the stream, where `read` shows the text kept here. */
  async send(conversationId: string, text: string, options: { expiresAt?: Date } = {}): Promise<void> {
    const sending = this.messaging.send(conversationId, text, options)
    this.#sending.add(sending)
    try {
      const sent = await sending
      await this.#store.set(
        textKey(conversationId, sent.seq),
        readable(new TextEncoder().encode(text)),
        expiryOf(sent.expiresAt),
      )
    } finally {
      this.#sending.delete(sending)
    }
  }

  async #kept(message: Message): Promise<ReadMessage | undefined> {
    const bytes = await this.#store.get(textKey(message.conversationId, message.seq))
    if (!bytes) return undefined
    if (bytes[0] !== 1) return { placeholder: 'A message that could not be decrypted' }
    return { text: new TextDecoder().decode(bytes.subarray(1)), expiresAt: message.expiresAt }
  }
}

/** An MLS PrivateMessage (application data) rather than a commit, by its wire format field. */
function isApplicationMessage(message: Message): boolean {
  if (message.contentType !== MLS_CONTENT_TYPE) return false
  const bytes = base64ToBytes(message.ciphertext)
  // MLSMessage: version (uint16) then wire_format (uint16); 2 is mls_private_message.
  return bytes.length > 4 && bytes[2] === 0 && bytes[3] === 2
}
