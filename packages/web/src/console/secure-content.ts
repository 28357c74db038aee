import { base64ToBytes, type Message, type StrongroomClient } from '@strongroom/sdk'
import { browserCryptoProvider, MLS_CONTENT_TYPE, openBrowserSecureStore, SecureMessaging } from '@strongroom/sdk/mls'
import type { SecureContent, StaffIdentity } from './session.ts'

/**
 * The agent's browser as an MLS member of its secure conversations. MLS keys move forward with every message, so a
 * message can be decrypted once only: the SDK keeps what this browser read (and sent) in the same encrypted IndexedDB
 * store as the group state, until each message expires, to show the conversation again after a reload.
 */
export class BrowserSecureContent implements SecureContent {
  readonly #messaging: SecureMessaging
  readonly #me: StaffIdentity

  private constructor(messaging: SecureMessaging, me: StaffIdentity) {
    this.#messaging = messaging
    this.#me = me
  }

  static async open(client: StrongroomClient, me: StaffIdentity): Promise<BrowserSecureContent> {
    const store = await openBrowserSecureStore(`strongroom-mls:${me.tenantId}:${me.staffId}`)
    const messaging = await SecureMessaging.open(client, { provider: browserCryptoProvider, store, keepTexts: true })
    const content = new BrowserSecureContent(messaging, me)
    await messaging.acceptWelcomes()
    return content
  }

  async isSecure(conversationId: string): Promise<boolean> {
    if (await this.#messaging.isMember(conversationId)) return true
    await this.#messaging.acceptWelcomes()
    return this.#messaging.isMember(conversationId)
  }

  async read(message: Message): Promise<{ text: string } | { placeholder: string } | undefined> {
    // Our own message echoed by the stream while send() is under way: keptText waits for the send, which keeps it.
    const kept = await this.#kept(message)
    if (kept) return kept
    if (message.sender.kind === 'staff' && message.sender.id === this.#me.staffId) {
      return { placeholder: 'Encrypted message sent from another session' }
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
    await this.#messaging.send(conversationId, text)
  }

  async #kept(message: Message): Promise<{ text: string } | { placeholder: string } | undefined> {
    const kept = await this.#messaging.keptText(message.conversationId, message.seq)
    if (!kept) return undefined
    return kept.kind === 'text' ? { text: kept.text } : { placeholder: 'A message that could not be decrypted' }
  }
}

/** An MLS PrivateMessage (application data) rather than a commit, by its wire format field. */
function isApplicationMessage(message: Message): boolean {
  if (message.contentType !== MLS_CONTENT_TYPE) return false
  const bytes = base64ToBytes(message.ciphertext)
  // MLSMessage: version (uint16) then wire_format (uint16); 2 is mls_private_message.
  return bytes.length > 4 && bytes[2] === 0 && bytes[3] === 2
}
