/// <reference path="./smpp-module.d.ts" />
import { randomInt, randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { setTimeout as delay } from 'node:timers/promises'
import smpp, { type Pdu, type Session } from 'smpp'
import {
  type Connector,
  type DeliveryReceipt,
  type DeliveryStatus,
  type InboundMessage,
  type OutboundMessage,
  type SentMessage,
  smsText,
} from './connector.ts'
import { ProviderRejectedError, ProviderUnavailableError, SmppBindRefusedError } from './errors.ts'
import { backoffMs, retryPolicyOf, sleep, type TransportOptions } from './retry.ts'
import { type Concatenation, concatenationOf, ESM_CLASS_UDHI, encodeSms } from './smpp-encoding.ts'

/** An ESME's side of one SMPP 3.4 transceiver bind to an SMSC. */
export interface SmppConfig {
  host: string
  port: number
  /** SMPP over TLS (the SMSC's certificate is checked against the system's CAs). */
  tls: boolean
  systemId: string
  password: string
  systemType?: string | undefined
  /** The bank's number in E.164: the source address of what we send. */
  sourceAddress: string
}

export interface SmppTimings {
  /** How often we ask the SMSC whether the link is alive. */
  enquireLinkMs: number
  /** How long we wait for any response (bind, submit, enquire_link, unbind) before giving the link up. */
  responseTimeoutMs: number
  /** Backoff between reconnections: exponential from base to max, with jitter. */
  reconnectBaseMs: number
  reconnectMaxMs: number
  /** How long the parts of a concatenated inbound SMS may take to arrive before the ones received are stored. */
  reassemblyMs: number
}

const DEFAULT_TIMINGS: SmppTimings = {
  enquireLinkMs: 30_000,
  responseTimeoutMs: 10_000,
  reconnectBaseMs: 1_000,
  reconnectMaxMs: 60_000,
  reassemblyMs: 60_000,
}

/**
 * connecting → bound → (link drops) disconnected → connecting …; bind-refused when the SMSC refused our credentials
 * (we stop trying, so as not to lock the account, until the channel is configured again); closed after close().
 */
export type SmppLinkState = 'connecting' | 'bound' | 'disconnected' | 'bind-refused' | 'closed'

/** What the link hands up; a rejection makes the SMSC deliver the PDU again later (or carries the status to answer). */
export interface SmppInbound {
  message(message: InboundMessage): Promise<void>
  receipt(receipt: DeliveryReceipt): Promise<void>
}

/** Thrown by an inbound handler to answer the deliver_sm with this SMPP status instead of a temporary error. */
export class SmppInboundRefusal extends Error {
  constructor(readonly statusName: 'ESME_RINVDSTADR') {
    super(`deliver_sm refused: ${statusName}`)
    this.name = 'SmppInboundRefusal'
  }
}

export interface SmppLinkEvents {
  /** For logs: what happened, never a credential, address or message text. */
  log?: (level: 'info' | 'warn', event: string, details?: Record<string, unknown>) => void
}

/** The command_status values used here (SMPP 3.4 §5.1.3). */
const status = {
  ESME_ROK: 0x00,
  ESME_RINVCMDID: 0x03,
  ESME_RSYSERR: 0x08,
  ESME_RINVDSTADR: 0x0b,
  ESME_RINVPASWD: 0x0e,
  ESME_RINVSYSID: 0x0f,
  ESME_RMSGQFUL: 0x14,
  ESME_RTHROTTLED: 0x58,
  ESME_RX_T_APPN: 0x64,
} as const
const STATUS_NAMES = new Map(Object.entries(smpp.errors).map(([name, value]) => [value, name]))
const smppStatusName = (value: number) => STATUS_NAMES.get(value) ?? 'ESME_UNKNOWN'

/** Credentials refused: binding again with them cannot succeed, and may lock the account. */
const CREDENTIAL_REFUSALS = new Set<number>([status.ESME_RINVPASWD, status.ESME_RINVSYSID])
/** The SMSC did not take the message for now (load, a passing fault): the same PDU may be submitted again. */
const TRANSIENT_SUBMIT_STATUSES = new Set<number>([
  status.ESME_RTHROTTLED,
  status.ESME_RMSGQFUL,
  status.ESME_RX_T_APPN,
  status.ESME_RSYSERR,
])
/** esm_class bits 2–5: the message type. 0 is a message from a phone; the others are receipts or acknowledgements. */
const ESM_MESSAGE_TYPE = 0x3c
const TON_INTERNATIONAL = 1
const NPI_ISDN = 1

/** The SMSC's message_state TLV (SMPP 3.4 §5.3.2.35) and the `stat:` word of a receipt's text, in our statuses. */
const MESSAGE_STATES = ['', 'ENROUTE', 'DELIVRD', 'EXPIRED', 'DELETED', 'UNDELIV', 'ACCEPTD', 'UNKNOWN', 'REJECTD']
const RECEIPT_STATUSES: Record<string, DeliveryStatus> = {
  ENROUTE: 'sent',
  ACCEPTD: 'sent',
  DELIVRD: 'delivered',
  EXPIRED: 'failed',
  DELETED: 'failed',
  UNDELIV: 'failed',
  REJECTD: 'failed',
}

/** Nothing reached the SMSC: the submit can be tried again without risk of a second copy. */
class NotSent extends Error {}
/** The PDU was written but its answer never came (timeout, or the link dropped): it may or may not have been taken. */
class NoAnswer extends Error {}

interface PendingRequest {
  fail(error: Error): void
}

interface PartialMessage {
  parts: Map<number, string>
  total: number
  first: InboundMessage
  timer: NodeJS.Timeout
}

/**
 * One SMPP 3.4 transceiver link: it binds with the channel's credentials, keeps the link alive with enquire_link
 * (and answers the SMSC's), reconnects with backoff when the link drops, submits messages, hands up inbound
 * deliver_sm (customer messages, reassembled from their parts, and delivery receipts), and unbinds on close.
 * A deliver_sm is answered only after its handler has stored it, so an SMSC that gets no answer delivers it again.
 */
export class SmppLink extends EventEmitter<{ state: [SmppLinkState] }> {
  #state: SmppLinkState = 'disconnected'
  /** The bound session, through which requests go. */
  #session: Session | undefined
  /** Ends the current connection, bound or not. */
  #hangUp: (() => void) | undefined
  #closed = false
  readonly #stopping = new AbortController()
  readonly #pending = new Set<PendingRequest>()
  readonly #partial = new Map<string, PartialMessage>()
  readonly #inFlight = new Set<Promise<void>>()
  readonly #timings: SmppTimings
  #running: Promise<void> | undefined

  constructor(
    readonly config: SmppConfig,
    private readonly inbound: SmppInbound,
    timings: Partial<SmppTimings> = {},
    private readonly events: SmppLinkEvents = {},
  ) {
    super()
    this.#timings = { ...DEFAULT_TIMINGS, ...timings }
  }

  get state(): SmppLinkState {
    return this.#state
  }

  start(): void {
    this.#running ??= this.#run()
  }

  /** Resolves once the link is in one of these states (tests, and callers that want to know the bind's outcome). */
  async reach(...states: SmppLinkState[]): Promise<SmppLinkState> {
    while (!states.includes(this.#state)) await new Promise((resolve) => this.once('state', resolve))
    return this.#state
  }

  #setState(state: SmppLinkState) {
    if (this.#state === state) return
    this.#state = state
    this.emit('state', state)
  }

  async #run(): Promise<void> {
    let failures = 0
    while (!this.#closed) {
      const outcome = await this.#connectOnce()
      if (this.#closed) break
      if (outcome === 'refused') {
        this.#setState('bind-refused')
        return
      }
      this.#setState('disconnected')
      // A link that was bound starts its backoff again; one that never bound backs off further each time.
      failures = outcome === 'dropped' ? 1 : failures + 1
      const policy = { baseDelayMs: this.#timings.reconnectBaseMs, maxDelayMs: this.#timings.reconnectMaxMs }
      const wait = backoffMs(failures, { ...retryPolicyOf({}), ...policy }, Math.random())
      this.events.log?.('warn', 'smpp link down, reconnecting', { outcome, inMs: wait })
      await delay(wait, undefined, { signal: this.#stopping.signal }).catch(() => {})
    }
  }

  /** One connection, from connect to close: 'refused' (credentials), 'failed' (never bound) or 'dropped' (was bound). */
  #connectOnce(): Promise<'refused' | 'failed' | 'dropped'> {
    this.#setState('connecting')
    return new Promise((resolve) => {
      const { host, port, tls } = this.config
      const session = smpp.connect({ host, port, tls, ...(tls ? { servername: host } : {}) })
      let bound = false
      let finished = false
      let enquireTimer: NodeJS.Timeout | undefined
      const finish = (outcome: 'refused' | 'failed' | 'dropped') => {
        if (finished) return
        finished = true
        clearTimeout(bindTimer)
        clearInterval(enquireTimer)
        if (this.#session === session) this.#session = undefined
        this.#hangUp = undefined
        for (const request of this.#pending) request.fail(new NoAnswer())
        this.#pending.clear()
        session.destroy()
        resolve(outcome)
      }
      const bindTimer = setTimeout(() => finish('failed'), this.#timings.responseTimeoutMs)
      this.#hangUp = () => finish(bound ? 'dropped' : 'failed')
      // Socket errors can name the host; only their code is logged.
      session.on('error', (error: NodeJS.ErrnoException) => {
        this.events.log?.('warn', 'smpp link error', { code: error.code ?? 'pdu' })
        finish(bound ? 'dropped' : 'failed')
      })
      session.on('close', () => finish(bound ? 'dropped' : 'failed'))
      session.on(tls ? 'secureConnect' : 'connect', () => {
        session.bind_transceiver(
          {
            system_id: this.config.systemId,
            password: this.config.password,
            system_type: this.config.systemType ?? '',
            interface_version: 0x34,
          },
          (response) => {
            clearTimeout(bindTimer)
            if (response.command_status === status.ESME_ROK) {
              bound = true
              this.#session = session
              this.#setState('bound')
              this.events.log?.('info', 'smpp link bound')
              enquireTimer = setInterval(() => {
                this.#request(session, 'enquire_link', {}).catch(() => {
                  this.events.log?.('warn', 'smpp enquire_link unanswered')
                  finish('dropped')
                })
              }, this.#timings.enquireLinkMs)
              return
            }
            const refused = CREDENTIAL_REFUSALS.has(response.command_status)
            this.events.log?.('warn', 'smpp bind refused', { status: smppStatusName(response.command_status) })
            finish(refused ? 'refused' : 'failed')
          },
        )
      })
      session.on('pdu', (pdu: Pdu) => {
        if (pdu.isResponse()) return
        this.#onRequest(session, pdu, () => finish('dropped'))
      })
    })
  }

  /** The SMSC's requests: enquire_link, unbind and deliver_sm are handled; anything else is refused. */
  #onRequest(session: Session, pdu: Pdu, drop: () => void) {
    switch (pdu.command) {
      case 'enquire_link':
        session.send(pdu.response())
        return
      case 'unbind':
        // The SMSC is going away (maintenance, failover): answer, then reconnect as after any drop.
        session.send(pdu.response())
        drop()
        return
      case 'deliver_sm':
        this.#track(this.#onDeliver(session, pdu))
        return
      case 'alert_notification':
        return
      default:
        session.send(pdu.response({ command_status: status.ESME_RINVCMDID }))
    }
  }

  #track(work: Promise<void>) {
    this.#inFlight.add(work)
    void work.finally(() => this.#inFlight.delete(work))
  }

  async #onDeliver(session: Session, pdu: Pdu) {
    let answer: number = status.ESME_ROK
    try {
      if ((Number(pdu.esm_class) & ESM_MESSAGE_TYPE) !== 0) {
        const receipt = parseDeliveryReceipt(pdu)
        if (receipt) await this.inbound.receipt(receipt)
      } else {
        await this.#onCustomerMessage(parseCustomerMessage(pdu))
      }
    } catch (error) {
      if (error instanceof SmppInboundRefusal) {
        answer = status[error.statusName]
      } else {
        // Not stored: a temporary error makes the SMSC try again later.
        answer = status.ESME_RX_T_APPN
        this.events.log?.('warn', 'smpp deliver_sm not stored', { reason: (error as { code?: string }).code })
      }
    }
    session.send(pdu.response({ command_status: answer }))
  }

  /**
   * A single SMS is handed up at once. The parts of a concatenated one are gathered (each answered as it arrives)
   * and handed up as one message when the last arrives, so that DLP sees the whole text; the part that completes it
   * is answered only once it is stored. Parts still missing after `reassemblyMs` are given up: what arrived is stored.
   */
  async #onCustomerMessage(part: CustomerMessagePart) {
    const { message, concatenation } = part
    if (!concatenation || concatenation.total === 1) return this.inbound.message(message)
    const key = [message.from, message.to, concatenation.reference, concatenation.total].join('\0')
    let partial = this.#partial.get(key)
    if (!partial) {
      partial = {
        parts: new Map(),
        total: concatenation.total,
        first: message,
        timer: setTimeout(() => this.#track(this.#flushPartial(key)), this.#timings.reassemblyMs),
      }
      this.#partial.set(key, partial)
    }
    partial.parts.set(concatenation.index, message.text)
    if (partial.parts.size === partial.total) await this.#flushPartial(key)
  }

  async #flushPartial(key: string) {
    const partial = this.#partial.get(key)
    if (!partial) return
    const text = [...partial.parts.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, t]) => t)
      .join('')
    await this.inbound.message({ ...partial.first, text })
    clearTimeout(partial.timer)
    this.#partial.delete(key)
  }

  /**
   * Submits a text, split into as many parts as it needs, each with a delivery receipt requested; resolves with the
   * SMSC's message id of each part. While the link is down, and when the SMSC answers with a load status, a part is
   * tried again with backoff, as HTTP sends are. A part whose submit_sm was written but never answered is not sent
   * again (SMPP has no idempotency key: a second submit could deliver it twice); the send fails instead.
   */
  async submit(to: string, text: string, transport: TransportOptions = {}): Promise<string[]> {
    const { dataCoding, parts } = encodeSms(text, randomInt(256))
    const ids: string[] = []
    for (const shortMessage of parts) {
      ids.push(
        await this.#submitPart(
          {
            source_addr_ton: TON_INTERNATIONAL,
            source_addr_npi: NPI_ISDN,
            source_addr: digitsOf(this.config.sourceAddress),
            dest_addr_ton: TON_INTERNATIONAL,
            dest_addr_npi: NPI_ISDN,
            destination_addr: digitsOf(to),
            esm_class: parts.length > 1 ? ESM_CLASS_UDHI : 0,
            // An SMSC delivery receipt on success and on failure.
            registered_delivery: 1,
            data_coding: dataCoding,
            short_message: shortMessage,
          },
          transport,
        ),
      )
    }
    return ids
  }

  async #submitPart(fields: Record<string, unknown>, transport: TransportOptions): Promise<string> {
    const policy = retryPolicyOf(transport)
    const wait = transport.sleep ?? sleep
    const random = transport.random ?? Math.random
    for (let attempt = 1; ; attempt++) {
      if (this.#state === 'bind-refused') throw new SmppBindRefusedError()
      if (this.#closed) throw new ProviderUnavailableError(attempt, undefined)
      const session = this.#session
      let answer: Pdu | undefined
      if (session) {
        try {
          answer = await this.#request(session, 'submit_sm', fields)
        } catch (error) {
          if (error instanceof NoAnswer) throw new ProviderUnavailableError(attempt, undefined)
        }
      }
      if (answer?.command_status === status.ESME_ROK) return String(answer.message_id)
      if (answer !== undefined && !TRANSIENT_SUBMIT_STATUSES.has(answer.command_status)) {
        throw new ProviderRejectedError(answer.command_status, smppStatusName(answer.command_status), 'smpp')
      }
      if (attempt >= policy.maxAttempts) throw new ProviderUnavailableError(attempt, undefined)
      await wait(backoffMs(attempt, policy, random()))
    }
  }

  /** Sends a request and waits for its response; NotSent when the link could not take it, NoAnswer on timeout. */
  #request(session: Session, command: 'submit_sm' | 'enquire_link' | 'unbind', fields: Record<string, unknown>) {
    return new Promise<Pdu>((resolve, reject) => {
      const request: PendingRequest = {
        fail: (error) => {
          clearTimeout(timer)
          this.#pending.delete(request)
          reject(error)
        },
      }
      const timer = setTimeout(() => request.fail(new NoAnswer()), this.#timings.responseTimeoutMs)
      this.#pending.add(request)
      const written = session[command](fields, (response) => {
        clearTimeout(timer)
        this.#pending.delete(request)
        resolve(response)
      })
      if (!written) request.fail(new NotSent())
    })
  }

  /**
   * Unbinds (waiting for the SMSC's answer, at most the response timeout), closes the connection and stops
   * reconnecting; inbound messages being stored are finished, and parts of a concatenated SMS are stored as they are.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#stopping.abort()
    const session = this.#session
    if (session && this.#state === 'bound') {
      await this.#request(session, 'unbind', {}).catch(() => {})
    }
    this.#hangUp?.()
    await this.#running
    await Promise.allSettled([...this.#inFlight])
    await Promise.allSettled([...this.#partial.keys()].map((key) => this.#flushPartial(key)))
    for (const partial of this.#partial.values()) clearTimeout(partial.timer)
    this.#setState('closed')
  }
}

interface CustomerMessagePart {
  message: InboundMessage
  concatenation: Concatenation | undefined
}

/** What the smpp package makes of short_message or message_payload: text in a known data_coding, else bytes. */
interface DecodedShortMessage {
  message?: string | Buffer
  udh?: Buffer[]
}

function decodedOf(value: unknown): DecodedShortMessage {
  return typeof value === 'object' && value !== null && !Buffer.isBuffer(value) ? (value as DecodedShortMessage) : {}
}

/** A deliver_sm from a phone. The SMSC's own id for it, when it gives one, is what makes storing it idempotent. */
function parseCustomerMessage(pdu: Pdu, receivedAt = new Date()): CustomerMessagePart {
  const short = decodedOf(pdu.short_message)
  const payload = decodedOf(pdu.message_payload)
  const body = short.message !== undefined && short.message.length > 0 ? short.message : payload.message
  const smscId = typeof pdu.receipted_message_id === 'string' ? pdu.receipted_message_id : ''
  return {
    message: {
      // Without an id from the SMSC, a redelivery cannot be told from the customer sending the same text again.
      providerMessageId: smscId !== '' ? smscId : `local-${randomUUID()}`,
      from: e164Of(String(pdu.source_addr ?? ''), Number(pdu.source_addr_ton)),
      to: e164Of(String(pdu.destination_addr ?? ''), Number(pdu.dest_addr_ton)),
      // A binary or unknown coding is not text: the bank sees that something was sent, as with an attachment.
      text: typeof body === 'string' ? body : '',
      mediaCount: body !== undefined && typeof body !== 'string' && body.length > 0 ? 1 : 0,
      receivedAt,
    },
    concatenation: concatenationOf(short.udh),
  }
}

/**
 * An SMSC delivery receipt: the id of the message it is about (receipted_message_id, else the `id:` of the receipt
 * text of SMPP 3.4 Appendix B) and its state (message_state, else `stat:`). Intermediate states we do not track
 * (UNKNOWN) and receipts without an id give nothing.
 */
function parseDeliveryReceipt(pdu: Pdu): DeliveryReceipt | undefined {
  const short = decodedOf(pdu.short_message)
  const text = typeof short.message === 'string' ? short.message : ''
  const field = (name: string) => new RegExp(`\\b${name}:(\\S+)`, 'i').exec(text)?.[1]
  const id =
    typeof pdu.receipted_message_id === 'string' && pdu.receipted_message_id ? pdu.receipted_message_id : field('id')
  const state = typeof pdu.message_state === 'number' ? MESSAGE_STATES[pdu.message_state] : field('stat')?.toUpperCase()
  const deliveryStatus =
    state !== undefined && Object.hasOwn(RECEIPT_STATUSES, state) ? RECEIPT_STATUSES[state] : undefined
  if (!id || !state || !deliveryStatus) return undefined
  if (deliveryStatus !== 'failed') return { providerMessageId: id, status: deliveryStatus }
  const err = field('err')
  return { providerMessageId: id, status: 'failed', errorCode: err && !/^0+$/.test(err) ? `${state}:${err}` : state }
}

/** An international number as SMPP carries it (digits, TON 1) in E.164; anything else (alphanumeric) as it is. */
function e164Of(address: string, ton: number): string {
  const digits = address.replace(/^\+/, '')
  return /^[1-9]\d{4,14}$/.test(digits) && (ton === TON_INTERNATIONAL || ton === 0) ? `+${digits}` : address
}

function digitsOf(e164: string): string {
  return e164.replace(/^\+/, '')
}

/** Sends on a channel's SMPP link; `recordParts` keeps the ids of a message's parts, whose receipts come one by one. */
export function smppConnector(
  link: SmppLink,
  transport: TransportOptions,
  recordParts: (partIds: string[]) => Promise<void>,
): Connector {
  return {
    kind: 'smpp',
    async send(message: OutboundMessage): Promise<SentMessage> {
      const ids = await link.submit(message.to, smsText(message), transport)
      if (ids.length > 1) await recordParts(ids)
      return { providerMessageId: ids[0] as string }
    },
  }
}
