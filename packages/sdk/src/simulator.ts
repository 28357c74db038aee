import { platformFetch } from './encoding.ts'
import { StrongroomError } from './errors.ts'
import type { PublicChannelConnector } from './public-channels.ts'

/** The channels the simulator plays a phone on: through the providers' webhooks (an SMSC is not simulated). */
export type SimulatedConnector = Exclude<PublicChannelConnector, 'smpp'>

export interface SimulatedChannel {
  connector: SimulatedConnector
  /** The bank's receiving address: its number (SMS), WhatsApp phone-number id or Facebook page id. */
  address: string
  /** RCS: the business name the phone shows with Google's verified badge. */
  verifiedSender?: string
}

/** One message on the simulated phone, either way. */
export interface PhoneMessage {
  /** Its place in the simulator's log: `thread` returns what came after the one given. */
  seq: number
  connector: SimulatedConnector
  direction: 'from-phone' | 'to-phone'
  /** The customer's address: a phone number (E.164 for SMS, digits for WhatsApp) or a page-scoped Messenger id. */
  phone: string
  providerMessageId: string
  text: string
  /** A call-to-action the bank sent (the pivot link's button on WhatsApp and Messenger); SMS carries links in text. */
  link: { url: string; label: string } | null
  at: string
  /** For a message from the phone: the HTTP status the bank's webhook answered (401 for a refused signature). */
  webhookStatus: number | null
}

export type WebhookSignature = 'valid' | 'invalid' | 'missing'

/**
 * Dev mode only: the channel simulator, which plays a customer's phone on SMS, WhatsApp and Messenger. Sending posts
 * a webhook in the provider's own wire format, signed with the channel's credentials, to the server's real webhook
 * path; what the bank sends to the phone is kept by the simulator (it plays the providers' send APIs in dev) and read
 * back with `thread`. A production server has none of this.
 *
 * @example
 * const phone = new ChannelSimulator({ baseUrl: 'http://127.0.0.1:8080' })
 * const [sms] = (await phone.channels()).filter((c) => c.connector === 'twilio')
 * await phone.send('twilio', { from: '+447700900123', to: sms.address, text: 'Hello' })
 * const { messages } = await phone.thread('twilio', '+447700900123', { after: 0, waitSeconds: 20 })
 */
export class ChannelSimulator {
  readonly baseUrl: string
  readonly #fetch: typeof fetch

  constructor(options: { baseUrl: string; fetch?: typeof fetch }) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '')
    this.#fetch = options.fetch ?? platformFetch
  }

  async #request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const response = await this.#fetch(this.baseUrl + path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? null : JSON.stringify(body),
      signal: signal ?? null,
    })
    const payload = await response.json()
    if (!response.ok) throw new StrongroomError(payload)
    return payload as T
  }

  /** The channels the server has configured, that a simulated phone can write to. */
  async channels(): Promise<SimulatedChannel[]> {
    return (await this.#request<{ channels: SimulatedChannel[] }>('GET', '/dev/simulator/channels')).channels
  }

  /**
   * Sends a text from the phone `from` to the bank's address `to`, as the provider's signed webhook (or a badly
   * signed one, to see it refused). Resolves with the status the bank's webhook answered.
   */
  send(
    connector: SimulatedConnector,
    message: { from: string; to: string; text: string; signature?: WebhookSignature },
  ): Promise<{ status: number; providerMessageId: string }> {
    return this.#request('POST', `/dev/simulator/phone/${connector}/messages`, message)
  }

  /**
   * The phone's messages on a channel after `after` (0 for all), both ways, oldest first. With `waitSeconds`, an
   * empty answer waits up to that long for the next message: call again with the last `seq` to follow it live.
   */
  async thread(
    connector: SimulatedConnector,
    phone: string,
    options: { after?: number; waitSeconds?: number; signal?: AbortSignal } = {},
  ): Promise<PhoneMessage[]> {
    const query = new URLSearchParams({ address: phone, after: String(options.after ?? 0) })
    if (options.waitSeconds !== undefined) query.set('waitSeconds', String(options.waitSeconds))
    const path = `/dev/simulator/phone/${connector}/thread?${query}`
    return (await this.#request<{ messages: PhoneMessage[] }>('GET', path, undefined, options.signal)).messages
  }

  /** Sends the provider's delivery receipt for a message the bank sent (the phone got it, or read it). */
  receipt(
    connector: SimulatedConnector,
    receipt: { to: string; providerMessageId: string; status: 'sent' | 'delivered' | 'read' | 'failed' },
  ): Promise<{ status: number }> {
    return this.#request('POST', `/dev/simulator/phone/${connector}/receipts`, receipt)
  }
}
