import {
  type DeviceClient,
  enrolWithPivotLink,
  isDeviceWipedProblem,
  openPivotLink,
  type PivotFactor,
  type PivotStepUpOptions,
  type ProblemKind,
  pivotStepUpOptions,
  problemKind,
  StrongroomError,
  sendPivotSmsCode,
} from '@strongroom/sdk'
import { BrowserDevice } from '@strongroom/sdk/mls'
import { ChatSession } from './chat-session.ts'

/** What the secure page shows. */
export type Screen =
  | { kind: 'loading' }
  | { kind: 'no-link' }
  | {
      kind: 'link-error'
      reason: 'expired' | 'used' | 'replaced' | 'invalid'
      /** This browser is already the customer's device: the chat opens without a link, and nothing is enrolled again. */
      chatHere: boolean
    }
  | { kind: 'step-up'; token: string; options: PivotStepUpOptions; replacing: boolean }
  | { kind: 'chat'; session: ChatSession }
  | { kind: 'wiped' }

const DEVICE_LABEL = 'Web browser'

const refusals: Partial<Record<ProblemKind, Extract<Screen, { kind: 'link-error' }>['reason']>> = {
  'pivot/token-expired': 'expired',
  'pivot/token-used': 'used',
  'pivot/token-revoked': 'replaced',
  'pivot/invalid-token': 'invalid',
  'request/invalid': 'invalid',
}

/** The link refusals that end the visit: each gets its own page, which offers the chat when this browser has it. */
function linkError(error: unknown, device: BrowserDevice | undefined): Screen | undefined {
  const kind = problemKind(error)
  const reason = kind && refusals[kind]
  return reason ? { kind: 'link-error', reason, chatHere: Boolean(device?.enrolment) } : undefined
}

/**
 * The visit: this browser as a device (or not yet), and what to show. A device revoked while the chat is open has its
 * store erased by the SDK, which then calls `onWiped`.
 */
export class Arrival {
  readonly baseUrl: string
  readonly #onWiped: () => void
  #device: BrowserDevice | undefined
  #chatting = false

  constructor(baseUrl: string, onWiped: () => void) {
    this.baseUrl = baseUrl
    this.#onWiped = onWiped
  }

  async #openDevice(): Promise<BrowserDevice> {
    this.#device ??= await BrowserDevice.open()
    return this.#device
  }

  #client(device: BrowserDevice, credentials?: DeviceClient['credentials']): DeviceClient {
    return device.client({
      baseUrl: this.baseUrl,
      ...(credentials ? { credentials } : {}),
      onRevoked: () => {
        // Revoked on arrival (an old device): the visit goes on as a new browser. Revoked in the chat: the wipe screen.
        this.#device = undefined
        if (this.#chatting) this.#onWiped()
      },
    })
  }

  /**
   * Where the visit starts. With a link: whether it can be used; an enrolled device of its customer redeems it at
   * once; any other browser steps up. Without one: the chat this device already holds, if it is one.
   */
  async start(token: string | undefined): Promise<Screen> {
    const device = await this.#openDevice()
    if (!token) {
      if (!device.enrolment) return { kind: 'no-link' }
      try {
        return await this.#chat(device, this.#client(device), undefined)
      } catch (error) {
        // Revoked while away: the SDK has erased what this browser kept; say so.
        if (error instanceof StrongroomError && isDeviceWipedProblem(error.problem)) return { kind: 'wiped' }
        throw error
      }
    }
    try {
      await openPivotLink({ baseUrl: this.baseUrl, token })
    } catch (error) {
      const refusal = linkError(error, device)
      if (refusal) return refusal
      throw error
    }
    if (device.enrolment) {
      const client = this.#client(device)
      try {
        const { secureConversationId } = await client.redeemPivotLink(token)
        return this.#chat(device, client, secureConversationId)
      } catch (error) {
        const refusal = linkError(error, device)
        const type = problemKind(error)
        if (refusal && type !== 'pivot/invalid-token') return refusal
        const revoked = error instanceof StrongroomError && isDeviceWipedProblem(error.problem)
        // Another customer's device (or another bank's) steps up; a revoked one was wiped and starts afresh.
        if (!revoked && type !== 'pivot/wrong-customer' && type !== 'pivot/invalid-token') throw error
      }
    }
    return this.stepUpOptions(token)
  }

  /** The factors to offer (fetched again after a failed passkey: each challenge works once). */
  async stepUpOptions(token: string): Promise<Screen> {
    try {
      const options = await pivotStepUpOptions({ baseUrl: this.baseUrl, token })
      return { kind: 'step-up', token, options, replacing: Boolean((await this.#openDevice()).enrolment) }
    } catch (error) {
      const refusal = linkError(error, this.#device)
      if (refusal) return refusal
      throw error
    }
  }

  sendSmsCode(token: string): Promise<{ expiresAt: string }> {
    return sendPivotSmsCode({ baseUrl: this.baseUrl, token })
  }

  /**
   * Enrols this browser with the factor and redeems the link; a link refusal ends the visit, a factor refusal is the
   * caller's to show. A browser that was another customer's device is wiped first: one customer per browser.
   */
  async stepUp(token: string, factor: PivotFactor): Promise<Screen> {
    let enrolled: Awaited<ReturnType<typeof enrolWithPivotLink>>
    try {
      enrolled = await enrolWithPivotLink({ baseUrl: this.baseUrl, token, label: DEVICE_LABEL, factor })
    } catch (error) {
      const refusal = linkError(error, this.#device)
      if (refusal) return refusal
      throw error
    }
    let device = await this.#openDevice()
    if (device.enrolment) {
      await device.wipe()
      this.#device = undefined
      device = await this.#openDevice()
    }
    await device.keep(enrolled)
    return this.#chat(device, this.#client(device, enrolled.client.credentials), enrolled.secureConversationId)
  }

  async #chat(device: BrowserDevice, client: DeviceClient, conversationId: string | undefined): Promise<Screen> {
    let id = conversationId
    if (id === undefined) {
      // Back without a link: the most recent of this device's secure conversations.
      const conversations = await client.listConversations()
      id = conversations.sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0]?.id
      if (id === undefined) return { kind: 'no-link' }
    }
    this.#chatting = true
    return { kind: 'chat', session: new ChatSession(client, device, id) }
  }
}
