import { CloseCode } from './close-codes.ts'
import { base64ToBytes, bytesToBase64, randomId } from './encoding.ts'
import { StrongroomError } from './errors.ts'
import type { ConversationUpdate, Message, SecurityNotice, SendFrame, ServerFrame, SignalFrame } from './protocol.ts'
import type { Transport, WebSocketConstructor } from './transport.ts'
import { isDeviceSuspendedProblem, isDeviceWipedProblem } from './wipe-problem.ts'

export interface OutgoingMessage {
  contentType: string
  ciphertext: Uint8Array
  /** Makes sending idempotent: the same id returns the same message. A random one is made if absent. */
  clientMessageId?: string
  expiresAt?: Date
}

export interface StreamOptions {
  /** Where to resume, per conversation: the last sequence number this device has kept. */
  cursors?: Record<string, number>
  onMessage?: (message: Message) => void
  onJoined?: (conversationId: string) => void
  /** No longer a member (a staff member whose conversation was transferred): nothing more of it arrives. */
  onLeft?: (conversationId: string) => void
  /** A device's customer changed their factors (from this device or another, or the bank reset them). */
  onNotice?: (notice: SecurityNotice) => void
  /**
   * A payment request, pivot link, assignment or status of a conversation changed, or a member's delivered and read
   * markers moved (see ConversationUpdate): read it. Updates are not replayed after a reconnect, so read what you
   * follow again when the state returns to `open`.
   */
  onUpdate?: (conversationId: string | null, update: ConversationUpdate) => void
  /** Another member's signal (typing, read): MLS ciphertext, for `SecureMessaging.readSignal`. Never replayed. */
  onSignal?: (signal: ReceivedSignal) => void
  /** A colleague's presence changed (told to staff who assign conversations): read it again. */
  onPresence?: (staffId: string) => void
  /** A colleague was added, or their role, name or activation changed (told to staff who assign conversations). */
  onStaffChanged?: (staffId: string) => void
  onStateChange?: (state: StreamState) => void
  /** A failure the stream cannot recover from by reconnecting (credentials refused). */
  onError?: (error: Error) => void
}

export type StreamState = 'connecting' | 'open' | 'reconnecting' | 'closed'

/** What the server acknowledged of a message sent over the stream, once it was committed. */
export interface SentMessage {
  seq: number
  id: string
  /** False when the client message id had been used before: the earlier message is the one kept. */
  created: boolean
  createdAt: string
  /** When the server deletes it (the sender's expiry, or the retention the bank set), or null. */
  expiresAt: string | null
}

/** A signal as the stream delivered it: who the server says sent it (the MLS content says it for sure), and the bytes. */
export interface ReceivedSignal {
  conversationId: string
  sender: { kind: 'device' | 'staff'; id: string }
  ciphertext: Uint8Array
}

interface PendingSend {
  frame: SendFrame
  resolve: (result: SentMessage) => void
  reject: (error: Error) => void
}

const MIN_BACKOFF_MS = 100
const MAX_BACKOFF_MS = 5_000
const ACK_DELAY_MS = 200

/** The close code for a connection that ended without a close frame (RFC 6455): the watchdog's. */
const ABNORMAL_CLOSURE = 1006

/**
 * The realtime stream of a client's conversations. It reconnects by itself (moving to the next server if there are
 * several), resumes from the last message it delivered, drops anything it has seen already, and re-sends messages
 * whose acknowledgement was lost: sending is idempotent, so a retry never makes a duplicate.
 */
export class MessageStream {
  readonly #transport: Transport
  readonly #WebSocket: WebSocketConstructor
  readonly #options: StreamOptions
  readonly #cursors: Map<string, number>
  readonly #outbox = new Map<string, PendingSend>()
  readonly #unacked = new Map<string, number>()
  /** Signals on their way, by ref: never kept for a reconnect (a late indicator is a wrong one). */
  readonly #signals = new Map<string, { resolve: () => void; reject: (error: Error) => void }>()
  #socket: WebSocket | undefined
  #state: StreamState = 'connecting'
  #ready = false
  #backoff = MIN_BACKOFF_MS
  #watchdog: ReturnType<typeof setTimeout> | undefined
  #ackTimer: ReturnType<typeof setTimeout> | undefined
  #heartbeatMs = 20_000
  #readyWaiters: { resolve: () => void; reject: (error: Error) => void }[] = []
  #authFailures = 0

  constructor(transport: Transport, WebSocketClass: WebSocketConstructor, options: StreamOptions) {
    this.#transport = transport
    this.#WebSocket = WebSocketClass
    this.#options = options
    this.#cursors = new Map(Object.entries(options.cursors ?? {}))
    this.#connect()
  }

  get state(): StreamState {
    return this.#state
  }

  /** The last sequence number delivered, per conversation: persist these to resume after a restart. */
  get cursors(): Record<string, number> {
    return Object.fromEntries(this.#cursors)
  }

  /** Resolves when the stream is authenticated and live. */
  ready(): Promise<void> {
    if (this.#ready) return Promise.resolve()
    return new Promise((resolve, reject) => this.#readyWaiters.push({ resolve, reject }))
  }

  /** Sends a message over the socket; resolves with its sequence number once the server has committed it. */
  send(conversationId: string, message: OutgoingMessage): Promise<SentMessage> {
    if (this.#state === 'closed') return Promise.reject(new Error('the stream is closed'))
    const clientMessageId = message.clientMessageId ?? randomId()
    const frame: SendFrame = {
      type: 'send',
      ref: clientMessageId,
      conversationId,
      clientMessageId,
      contentType: message.contentType,
      ciphertext: bytesToBase64(message.ciphertext),
      ...(message.expiresAt ? { expiresAt: message.expiresAt.toISOString() } : {}),
    }
    return new Promise((resolve, reject) => {
      this.#outbox.set(frame.ref, { frame, resolve, reject })
      if (this.#ready) this.#socket?.send(JSON.stringify(frame))
    })
  }

  // ── Signals: ephemeral MLS messages (typing, read), relayed and never stored ──

  /**
   * Sends a signal (an MLS application message `SecureMessaging.signal` made) to the members connected now. Resolves
   * once relayed; rejects when refused, or at once when the stream is not open: a signal is never queued or sent again.
   */
  signal(conversationId: string, ciphertext: Uint8Array): Promise<void> {
    if (!this.#ready || !this.#socket) return Promise.reject(new Error('the stream is not open'))
    const frame: SignalFrame = {
      type: 'signal',
      ref: randomId(),
      conversationId,
      ciphertext: bytesToBase64(ciphertext),
    }
    return new Promise((resolve, reject) => {
      this.#signals.set(frame.ref, { resolve, reject })
      this.#socket?.send(JSON.stringify(frame))
    })
  }

  #dropSignals(): void {
    for (const pending of this.#signals.values()) pending.reject(new Error('the stream closed'))
    this.#signals.clear()
  }

  close(): void {
    this.#setState('closed')
    clearTimeout(this.#watchdog)
    clearTimeout(this.#ackTimer)
    this.#flushAcks()
    this.#socket?.close(1000, 'client closed')
    for (const pending of this.#outbox.values()) pending.reject(new Error('the stream is closed'))
    this.#outbox.clear()
    this.#dropSignals()
    for (const waiter of this.#readyWaiters) waiter.reject(new Error('the stream is closed'))
    this.#readyWaiters = []
  }

  #setState(state: StreamState): void {
    if (this.#state === state) return
    this.#state = state
    this.#options.onStateChange?.(state)
  }

  /** The auth frame's credentials: the DPoP proof, and the App Attest assertion over it when the bank asks for one. */
  async #authorize(httpUrl: string) {
    const auth = await this.#transport.credentials.authorize('GET', httpUrl)
    const assertion = await this.#transport.requestAssertion(auth.dpop)
    return assertion ? { ...auth, assertion } : auth
  }

  #connect(): void {
    if (this.#state === 'closed') return
    const httpUrl = `${this.#transport.baseUrl}/v1/stream`
    const socket = new this.#WebSocket(httpUrl.replace(/^http/, 'ws'))
    this.#socket = socket
    this.#ready = false
    socket.onopen = () => {
      this.#authorize(httpUrl).then(
        (auth) => {
          if (socket !== this.#socket) return
          const cursors = this.cursors
          const integrity = this.#transport.integrityToken
          socket.send(
            JSON.stringify({
              type: 'auth',
              ...auth,
              ...(integrity ? { integrity } : {}),
              ...(this.#cursors.size > 0 ? { cursors } : {}),
            }),
          )
        },
        (error: Error) => {
          this.#options.onError?.(error)
          // The token renewal was answered with a wipe command: obey it, and stay closed.
          if (error instanceof StrongroomError && isDeviceWipedProblem(error.problem)) {
            void this.#transport.obeyWipeCommand(error.problem).catch(() => undefined)
            this.close()
            return
          }
          // Suspended: retrying is pointless until someone resumes the device; start a new stream then.
          if (error instanceof StrongroomError && isDeviceSuspendedProblem(error.problem)) {
            this.close()
            return
          }
          socket.close()
        },
      )
    }
    socket.onmessage = (event) => {
      if (socket !== this.#socket) return
      this.#armWatchdog()
      this.#onFrame(JSON.parse(String(event.data)) as ServerFrame)
    }
    socket.onclose = (event) => {
      if (socket !== this.#socket) return
      this.#onClose(event.code)
    }
    socket.onerror = () => {}
    this.#armWatchdog()
  }

  /**
   * No frame (not even a heartbeat) for two heartbeats means the node is gone or hung even if no close came. The
   * socket is abandoned at once and the stream moves on: a graceful close would wait for a close frame the hung node
   * never sends (30 s in `ws`).
   */
  #armWatchdog(): void {
    clearTimeout(this.#watchdog)
    this.#watchdog = setTimeout(() => {
      const socket = this.#socket
      if (!socket) return
      this.#socket = undefined
      const terminate = (socket as { terminate?: () => void }).terminate
      if (typeof terminate === 'function') terminate.call(socket)
      else socket.close()
      this.#onClose(ABNORMAL_CLOSURE)
    }, this.#heartbeatMs * 2)
  }

  #onFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case 'ready':
        this.#ready = true
        this.#backoff = MIN_BACKOFF_MS
        this.#authFailures = 0
        this.#heartbeatMs = frame.heartbeatMs
        this.#armWatchdog()
        this.#setState('open')
        for (const conversation of frame.conversations) {
          if (!this.#cursors.has(conversation.conversationId)) this.#cursors.set(conversation.conversationId, 0)
        }
        for (const pending of this.#outbox.values()) this.#socket?.send(JSON.stringify(pending.frame))
        for (const waiter of this.#readyWaiters) waiter.resolve()
        this.#readyWaiters = []
        return
      case 'message': {
        const { message } = frame
        if (message.seq <= (this.#cursors.get(message.conversationId) ?? 0)) return
        this.#cursors.set(message.conversationId, message.seq)
        this.#unacked.set(message.conversationId, message.seq)
        this.#ackTimer ??= setTimeout(() => this.#flushAcks(), ACK_DELAY_MS)
        this.#options.onMessage?.(message)
        return
      }
      case 'sent': {
        const pending = this.#outbox.get(frame.ref)
        this.#outbox.delete(frame.ref)
        const { seq, id, createdAt, expiresAt } = frame.message
        pending?.resolve({ seq, id, created: frame.created, createdAt, expiresAt: expiresAt ?? null })
        return
      }
      case 'joined':
        if (!this.#cursors.has(frame.conversationId)) this.#cursors.set(frame.conversationId, 0)
        this.#options.onJoined?.(frame.conversationId)
        return
      case 'left':
        this.#cursors.delete(frame.conversationId)
        this.#unacked.delete(frame.conversationId)
        this.#options.onLeft?.(frame.conversationId)
        return
      case 'notice':
        this.#options.onNotice?.(frame.notice)
        return
      case 'signalled':
        this.#signals.get(frame.ref)?.resolve()
        this.#signals.delete(frame.ref)
        return
      case 'signal': {
        const { conversationId, sender } = frame
        this.#options.onSignal?.({ conversationId, sender, ciphertext: base64ToBytes(frame.ciphertext) })
        return
      }
      case 'presence':
        this.#options.onPresence?.(frame.staffId)
        return
      case 'staff':
        this.#options.onStaffChanged?.(frame.staffId)
        return
      case 'update':
        this.#options.onUpdate?.(frame.conversationId, frame.update)
        return
      case 'error': {
        const signal = frame.ref === undefined ? undefined : this.#signals.get(frame.ref)
        if (signal && frame.ref !== undefined) {
          this.#signals.delete(frame.ref)
          signal.reject(new StrongroomError(frame.problem))
          return
        }
        const pending = frame.ref === undefined ? undefined : this.#outbox.get(frame.ref)
        if (pending && frame.ref !== undefined) {
          this.#outbox.delete(frame.ref)
          pending.reject(new StrongroomError(frame.problem))
        } else if (!pending) {
          // Refused as a revoked device, with a wipe command: obey it (the 4003 close follows).
          void this.#transport.obeyWipeCommand(frame.problem).catch(() => undefined)
          this.#options.onError?.(new StrongroomError(frame.problem))
        }
        return
      }
      default:
        return
    }
  }

  #flushAcks(): void {
    this.#ackTimer = undefined
    if (!this.#ready) return
    for (const [conversationId, seq] of this.#unacked) {
      this.#socket?.send(JSON.stringify({ type: 'ack', conversationId, seq }))
    }
    this.#unacked.clear()
  }

  #onClose(code: number): void {
    clearTimeout(this.#watchdog)
    this.#ready = false
    this.#dropSignals()
    if (this.#state === 'closed') return
    if (code === CloseCode.revoked) {
      this.#options.onError?.(new Error('this device has been revoked'))
      this.close()
      // Revoked while connected: the server's wipe command comes with the next use of the key, so ask now.
      void this.#transport.checkRevocation().catch(() => undefined)
      return
    }
    if (code === CloseCode.suspended) {
      // Nothing to erase: the bank or another device of the customer may resume it. Start a new stream then.
      this.#options.onError?.(new Error('this device has been suspended'))
      this.close()
      return
    }
    if (code === CloseCode.unauthorized || code === CloseCode.tokenExpired) {
      this.#transport.credentials.invalidate()
      // A token can be refused once for being stale; refused again right after renewal, the device is not allowed.
      if (code === CloseCode.unauthorized && ++this.#authFailures > 1) {
        const error = new Error('the server refused the stream credentials')
        this.#options.onError?.(error)
        this.close()
        return
      }
    } else {
      // The node may be gone or going (a restart, a crash): try the next one, if there are several.
      this.#transport.failover()
    }
    this.#setState('reconnecting')
    const delay = this.#backoff * (0.5 + Math.random() / 2)
    this.#backoff = Math.min(this.#backoff * 2, MAX_BACKOFF_MS)
    setTimeout(() => this.#connect(), delay)
  }
}
