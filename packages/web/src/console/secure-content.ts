import { base64ToBytes, type Message, type StrongroomClient } from '@strongroom/sdk'
import {
  browserCryptoProvider,
  MLS_CONTENT_TYPE,
  openBrowserSecureStore,
  type SecureEvent,
  SecureMessaging,
  type SecureStore,
} from '@strongroom/sdk/mls'
import type { SecureContent, StaffIdentity } from './session.ts'

// What is kept per message: 1 then the text's bytes, or 0 alone for a message that could not be decrypted.
const UNREADABLE = new Uint8Array([0])
const readable = (bytes: Uint8Array) => {
  const kept = new Uint8Array(bytes.length + 1)
  kept[0] = 1
  kept.set(bytes, 1)
  return kept
}
const textKey = (conversationId: string, seq: number) => `console/text/${conversationId}/${seq}`

/**
 * The agent's browser as an MLS member of its secure conversations. MLS keys move forward with every message, so a
 * message can be decrypted once only: the console keeps what it read (and what it sent) in the same encrypted
 * IndexedDB store as the group state, to show the conversation again after a reload.
 */
export class BrowserSecureContent implements SecureContent {
  readonly #messaging: SecureMessaging
  readonly #store: SecureStore
  readonly #me: StaffIdentity
  readonly #sending = new Set<Promise<unknown>>()

  private constructor(messaging: SecureMessaging, store: SecureStore, me: StaffIdentity) {
    this.#messaging = messaging
    this.#store = store
    this.#me = me
  }

  static async open(client: StrongroomClient, me: StaffIdentity): Promise<BrowserSecureContent> {
    const store = await openBrowserSecureStore(`strongroom-mls:${me.tenantId}:${me.staffId}`)
    let content: BrowserSecureContent | undefined
    const messaging = await SecureMessaging.open(client, {
      provider: browserCryptoProvider,
      store,
      onEvent: (event) => content?.keep(event),
    })
    content = new BrowserSecureContent(messaging, store, me)
    await messaging.acceptWelcomes()
    return content
  }

  /** Keeps the text of every message read, whichever call read it (a catch-up reads several at once). */
  async keep(event: SecureEvent): Promise<void> {
    if (event.kind === 'message') await this.#store.set(textKey(event.conversationId, event.seq), readable(event.bytes))
    if (event.kind === 'unreadable') await this.#store.set(textKey(event.conversationId, event.seq), UNREADABLE)
  }

  async isSecure(conversationId: string): Promise<boolean> {
    if (await this.#messaging.isMember(conversationId)) return true
    await this.#messaging.acceptWelcomes()
    return this.#messaging.isMember(conversationId)
  }

  async read(message: Message): Promise<{ text: string } | { placeholder: string } | undefined> {
    const kept = await this.#kept(message)
    if (kept) return kept
    if (message.sender.kind === 'staff' && message.sender.id === this.#me.staffId) {
      // Our own message, echoed by the stream before send() stored its text.
      await Promise.allSettled([...this.#sending])
      return (await this.#kept(message)) ?? { placeholder: 'Encrypted message sent from another session' }
    }
    if (!(await this.#messaging.isMember(message.conversationId))) await this.#messaging.acceptWelcomes()
    if (!(await this.#messaging.isMember(message.conversationId))) {
      return { placeholder: 'Encrypted message (this browser is not a member of the conversation)' }
    }
    await this.#messaging.receive(message)
    const read = await this.#kept(message)
    if (read) return read
    // Commits and other protocol messages carry no text for the agent.
    return isApplicationMessage(message) ? { placeholder: 'Encrypted message this browser cannot read' } : undefined
  }

  async send(conversationId: string, text: string): Promise<void> {
    const sending = this.#messaging.send(conversationId, text)
    this.#sending.add(sending)
    try {
      const sent = await sending
      await this.#store.set(textKey(conversationId, sent.seq), readable(new TextEncoder().encode(text)))
    } finally {
      this.#sending.delete(sending)
    }
  }

  async #kept(message: Message): Promise<{ text: string } | { placeholder: string } | undefined> {
    const bytes = await this.#store.get(textKey(message.conversationId, message.seq))
    if (!bytes) return undefined
    if (bytes[0] !== 1) return { placeholder: 'A message that could not be decrypted' }
    return { text: new TextDecoder().decode(bytes.subarray(1)) }
  }
}

/** An MLS PrivateMessage (application data) rather than a commit, by its wire format field. */
function isApplicationMessage(message: Message): boolean {
  if (message.contentType !== MLS_CONTENT_TYPE) return false
  const bytes = base64ToBytes(message.ciphertext)
  // MLSMessage: version (uint16) then wire_format (uint16); 2 is mls_private_message.
  return bytes.length > 4 && bytes[2] === 0 && bytes[3] === 2
}
