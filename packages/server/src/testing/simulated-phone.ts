import type { StaffClient } from '@strongroom/sdk'

/** A message the bank sent to the simulated phone, as the dev simulator's inbox shows it. */
export interface SimulatedMessage {
  providerMessageId: string
  to: string
  text: string
  link: { url: string; label: string } | null
}

/**
 * A customer's phone in the dev channel simulator (dev mode only): it texts the bank through the connector's real
 * webhook path, and reads what the bank sent it, codes and pivot links included.
 */
export class SimulatedPhone {
  readonly #baseUrl: string
  readonly address: string
  readonly #connector: string

  constructor(baseUrl: string, address: string, connector: 'twilio' | 'whatsapp' | 'messenger' = 'twilio') {
    this.#baseUrl = baseUrl
    this.address = address
    this.#connector = connector
  }

  /** Sends a message to the bank's number (or page) `to`. */
  async texts(to: string, text: string): Promise<void> {
    const response = await fetch(`${this.#baseUrl}/dev/simulator/phone/${this.#connector}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ from: this.address, to, text }),
    })
    if (!response.ok) throw new Error(`the simulator refused the message: ${response.status}`)
  }

  async inbox(): Promise<SimulatedMessage[]> {
    const query = `address=${encodeURIComponent(this.address)}`
    const response = await fetch(`${this.#baseUrl}/dev/simulator/phone/${this.#connector}/inbox?${query}`)
    return ((await response.json()) as { messages: SimulatedMessage[] }).messages
  }

  /** The 6-digit code in the last message received, if it carries one. */
  async lastCode(): Promise<string | undefined> {
    return /code: (\d{6})\./.exec((await this.inbox()).at(-1)?.text ?? '')?.[1]
  }

  /** The link of the last message received: a button on WhatsApp and Messenger, in the text of an SMS. */
  async lastLink(): Promise<string | undefined> {
    const last = (await this.inbox()).at(-1)
    return last?.link?.url ?? /https?:\/\/\S+/.exec(last?.text ?? '')?.[0]
  }
}

/**
 * Configures a tenant's SMS channel (Twilio's wire format) with its admin's client; on a dev server without a provider
 * URL, what the bank sends goes to the simulator's phones. Inbound texts to `bankNumber` go to `agentId`.
 */
export async function configureSimulatedSms(
  admin: StaffClient,
  input: { bankNumber: string; agentId: string },
): Promise<void> {
  await admin.request('PUT', '/v1/channels/twilio', {
    address: input.bankNumber,
    accountSid: `AC${'0'.repeat(31)}1`,
    agentId: input.agentId,
    secrets: { authToken: 'twilio-auth-token-0123456789abcdef' },
  })
}
