import {
  type ConversationChannel,
  type Message,
  type PublicMessage,
  problemKind,
  type SentPublicMessage,
  type StaffClient,
} from '@strongroom/sdk'

/** What the console shows of a public-channel message besides its text. */
export interface PublicDetails {
  channel: string
  /** The kinds of data DLP masked in the text (the text holds the masks, never the values). */
  masked: string[]
  /** Masked after it arrived: a later message of the customer completed a card number it began. */
  maskedLater: boolean
  /** Smishing and spoofing flags: a lookalike link, a link shortener, a sender claiming to be the bank. */
  risk: string[]
  /** A pivot invitation: its button's label (the link itself is never stored). */
  linkLabel: string | null
  /** Attachments the customer sent, which are not carried across. */
  mediaCount: number
  /** Public-channel history imported into a secure conversation. */
  imported: boolean
  /** When it was sent or received on the public channel (imported history keeps this time, not the pivot's). */
  at: string
  /** The bank's own messages: where the provider says it is. */
  delivery: PublicMessage['delivery']
}

/** Delivery states after which nothing changes. */
const SETTLED = new Set(['read', 'failed'])
/** How many public messages one read fetches: the rest of a history loads with the first of it. */
const READ_AHEAD = 200

/**
 * The public-channel side of the console: which conversations are on SMS, WhatsApp or Messenger (or are the secure
 * continuation of one), the text of their messages (opened by the server, DLP-masked where the customer wrote card
 * or account data), and the agent's replies, which go out on the customer's channel.
 */
export class PublicChannels {
  readonly #client: StaffClient
  readonly #changed: () => void
  readonly #channels = new Map<string, ConversationChannel>()
  /** Opened messages by conversation and sequence number. */
  readonly #opened = new Map<string, Map<number, PublicMessage>>()

  constructor(client: StaffClient, changed: () => void) {
    this.#client = client
    this.#changed = changed
  }

  /** Learns (or refreshes) which of these conversations belong to a public channel. */
  async learn(conversationIds: readonly string[]): Promise<void> {
    if (conversationIds.length === 0) return
    // The server answers for at most 100 conversations a request.
    for (let start = 0; start < conversationIds.length; start += 100) {
      for (const channel of await this.#client.conversationChannels(conversationIds.slice(start, start + 100))) {
        this.#channels.set(channel.conversationId, channel)
      }
    }
    this.#changed()
  }

  of(conversationId: string): ConversationChannel | undefined {
    return this.#channels.get(conversationId)
  }

  /** A conversation on a public channel itself, where replies go to the customer's phone. */
  isPublic(conversationId: string): boolean {
    return this.#channels.get(conversationId)?.kind === 'public'
  }

  /** The text and details of a public-channel message of the log; undefined if the server has none for it. */
  async read(message: Message): Promise<{ text: string; details: PublicDetails } | undefined> {
    let opened = this.#opened.get(message.conversationId)?.get(message.seq)
    if (!opened) {
      await this.#load(message.conversationId, message.seq - 1)
      opened = this.#opened.get(message.conversationId)?.get(message.seq)
    }
    return opened && { text: opened.text, details: detailsOf(opened) }
  }

  /**
   * Reads again messages the server masked after the fact (the stream's `redaction` update), replacing what this
   * console holds of them; returns their text and details by sequence number.
   */
  async reread(
    conversationId: string,
    seqs: readonly number[],
  ): Promise<Map<number, { text: string; details: PublicDetails }>> {
    const reread = new Map<number, { text: string; details: PublicDetails }>()
    if (seqs.length === 0) return reread
    await this.#load(conversationId, Math.min(...seqs) - 1)
    for (const seq of seqs) {
      const opened = this.#opened.get(conversationId)?.get(seq)
      if (opened) reread.set(seq, { text: opened.text, details: detailsOf(opened) })
    }
    return reread
  }

  send(conversationId: string, text: string): Promise<SentPublicMessage> {
    return this.#client.sendPublicMessage(conversationId, { text })
  }

  /**
   * Moves the delivery states of the bank's messages shown here forward (the provider's receipts arrive after the
   * message). Returns whether anything changed.
   */
  async refreshDeliveries(
    conversationId: string,
    shown: readonly { seq: number; public?: PublicDetails | undefined }[],
  ): Promise<boolean> {
    const unsettled = shown.filter((m) => m.public?.delivery && !SETTLED.has(m.public.delivery.status))
    const first = unsettled[0]
    if (!first) return false
    await this.#load(conversationId, first.seq - 1)
    const opened = this.#opened.get(conversationId)
    let changed = false
    for (const message of unsettled) {
      const delivery = opened?.get(message.seq)?.delivery
      if (message.public && delivery && delivery.status !== message.public.delivery?.status) {
        message.public.delivery = delivery
        changed = true
      }
    }
    if (changed) this.#changed()
    return changed
  }

  async #load(conversationId: string, after: number): Promise<void> {
    const messages = await this.#client.listPublicMessages(conversationId, { after, limit: READ_AHEAD })
    let opened = this.#opened.get(conversationId)
    if (!opened) {
      opened = new Map()
      this.#opened.set(conversationId, opened)
    }
    for (const message of messages) opened.set(message.seq, message)
  }
}

function detailsOf(message: PublicMessage): PublicDetails {
  return {
    channel: message.channel,
    masked: message.masked,
    maskedLater: message.maskedLater,
    risk: message.risk,
    linkLabel: message.linkLabel,
    mediaCount: message.mediaCount,
    imported: message.imported,
    at: message.at,
    delivery: message.delivery,
  }
}

/** Why a reply was not sent, in words for the agent: what the server refused and what to do instead. */
export function whyNotSent(error: unknown, channelName: string | undefined): string {
  const type = problemKind(error)
  const on = channelName ?? 'a public channel'
  switch (type) {
    case 'channels/sensitive-data':
      return `Not sent: card or account details cannot go out on ${on}. Move the customer to the secure channel and ask there.`
    case 'channels/outside-service-window':
      return 'Not sent: WhatsApp allows free replies only within 24 hours of the customer’s last message.'
    case 'channels/provider-unavailable':
    case 'channels/provider-rejected':
      return `Not sent: ${on} did not take the message. Try again in a moment.`
    default:
      return `Not sent: ${(error as Error).message}`
  }
}
