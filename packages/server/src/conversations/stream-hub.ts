import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import { ROOT_CONTEXT } from '@opentelemetry/api'
import { type AuthFrame, authFrameCheck, type ClientFrame, CloseCode, clientFrameCheck } from '@strongroom/sdk/protocol'
import type { WebSocket } from 'ws'
import {
  CUSTOMER_NOTICE_SUBJECT_PREFIX,
  type CustomerNoticeEvent,
  DEVICE_REVOKED_SUBJECT_PREFIX,
  DEVICE_SUSPENDED_SUBJECT_PREFIX,
  type DeviceRevokedEvent,
  type DeviceSuspendedEvent,
} from '../identity/device-events.ts'
import { APP_VERSION_DEACTIVATED_SUBJECT_PREFIX, type AppVersionDeactivatedEvent } from '../integrity/app-versions.ts'
import type { ServerContext } from '../platform/context.ts'
import type { ActionGuard } from '../platform/http/access-rule.ts'
import { type Principal, principalMember } from '../platform/http/principal.ts'
import { asProblem, Problem } from '../platform/http/problems.ts'
import { hasUnstorableText } from '../platform/http/schemas.ts'
import { contextFrom, inSpan, tracer, tracingEnabled } from '../platform/tracing.ts'
import { PRESENCE_SUBJECT_PREFIX, type PresenceChangedEvent, StaffConnections } from '../tenancy/presence.ts'
import {
  STAFF_CHANGED_SUBJECT_PREFIX,
  STAFF_REVOKED_SUBJECT_PREFIX,
  type StaffChangedEvent,
  type StaffRevokedEvent,
} from '../tenancy/staff-events.ts'
import {
  type ConversationUpdateEvent,
  MEMBER_LEFT_SUBJECT_PREFIX,
  MEMBER_SUBJECT_PREFIX,
  MESSAGE_SUBJECT_PREFIX,
  type MemberAddedEvent,
  type MemberLeftEvent,
  type MessagesCommittedEvent,
  publishConversationUpdate,
  UPDATE_SUBJECT_PREFIX,
} from './bus-events.ts'
import {
  advanceDeliveredMarkers,
  type DeliveredMarker,
  lastSequences,
  memberConversationCursors,
} from './conversations.ts'
import { messageActions, sendMessage } from './message-actions.ts'
import type { MessageLog } from './message-log.ts'
import { fetchMessages } from './messages.ts'
import { relaySignal, SIGNAL_SUBJECT_PREFIX, type SignalRelayedEvent } from './signals.ts'

/**
 * The principal of an auth frame, one that may read messages (else it throws the refusal); for a device whose
 * integrity token was checked, the app it vouched for; and the guard that holds each later frame to the rule of the
 * HTTP route that does the same (`messageActions`).
 */
export type StreamAuthenticator = (
  frame: AuthFrame,
  htu: string,
) => Promise<{ principal: Principal; app?: { appId: string; appVersion: string } | undefined; guard: ActionGuard }>

const AUTH_TIMEOUT_MS = 10_000
const CATCH_UP_PAGE = 200
const MARKER_FLUSH_MS = 2_000
const SWEEP_MS = 2_000
const decoder = new TextDecoder()

/**
 * One node's realtime delivery. It listens on the bus for committed messages and new memberships and writes them to
 * the sockets of the members connected here; when a socket's cursor and a wake-up do not line up (a gap, a missed
 * wake-up, a bus reconnect) it reads the gap from the database, which holds the truth.
 */
export class StreamHub {
  readonly #ctx: ServerContext
  readonly #log: MessageLog
  readonly #authenticate: StreamAuthenticator
  readonly #sessions = new Set<StreamSession>()
  readonly #byConversation = new Map<string, Set<StreamSession>>()
  readonly #byMember = new Map<string, Set<StreamSession>>()
  readonly #unsubscribe: (() => void)[] = []
  /** Staff consoles connected here, for their presence. */
  readonly #staffConnections: StaffConnections
  #markerTimer: NodeJS.Timeout | undefined
  #sweepTimer: NodeJS.Timeout | undefined
  /** Each conversation with a socket here and its last sequence number, as the previous sweep read them. */
  #previousSweep = new Map<string, number>()
  /** The sockets written to in this turn of the event loop, held corked until its end. */
  #corked = new Set<Socket>()

  constructor(ctx: ServerContext, log: MessageLog, authenticate: StreamAuthenticator) {
    this.#ctx = ctx
    this.#log = log
    this.#authenticate = authenticate
    this.#staffConnections = new StaffConnections(ctx)
    this.#unsubscribe.push(
      ctx.bus.subscribe(`${MESSAGE_SUBJECT_PREFIX}>`, (_subject, payload) => this.#onMessages(payload)),
      ctx.bus.subscribe(`${MEMBER_SUBJECT_PREFIX}>`, (_subject, payload) => this.#onMemberAdded(payload)),
      ctx.bus.subscribe(`${MEMBER_LEFT_SUBJECT_PREFIX}>`, (_subject, payload) => this.#onMemberLeft(payload)),
      ctx.bus.subscribe(`${DEVICE_REVOKED_SUBJECT_PREFIX}>`, (_subject, payload) =>
        this.#closeDevice(payload, CloseCode.revoked, 'device revoked'),
      ),
      ctx.bus.subscribe(`${DEVICE_SUSPENDED_SUBJECT_PREFIX}>`, (_subject, payload) =>
        this.#closeDevice(payload, CloseCode.suspended, 'device suspended'),
      ),
      ctx.bus.subscribe(`${STAFF_REVOKED_SUBJECT_PREFIX}>`, (_subject, payload) => this.#closeStaff(payload)),
      ctx.bus.subscribe(`${CUSTOMER_NOTICE_SUBJECT_PREFIX}>`, (_subject, payload) => this.#noticeCustomer(payload)),
      ctx.bus.subscribe(`${UPDATE_SUBJECT_PREFIX}>`, (_subject, payload) => this.#onUpdate(payload)),
      ctx.bus.subscribe(`${SIGNAL_SUBJECT_PREFIX}>`, (_subject, payload) => this.#onSignal(payload)),
      ctx.bus.subscribe(`${PRESENCE_SUBJECT_PREFIX}>`, (_subject, payload) => this.#toAssigners('presence', payload)),
      ctx.bus.subscribe(`${STAFF_CHANGED_SUBJECT_PREFIX}>`, (_subject, payload) => this.#toAssigners('staff', payload)),
      ctx.bus.subscribe(`${APP_VERSION_DEACTIVATED_SUBJECT_PREFIX}*`, (_subject, payload) =>
        this.#closeAppVersion(payload),
      ),
      ctx.bus.onReconnect(() => {
        for (const session of this.#sessions) session.resyncAll()
      }),
    )
    this.#markerTimer = setInterval(() => void this.flushMarkers(), MARKER_FLUSH_MS)
    this.#markerTimer.unref()
    this.#sweepTimer = setInterval(() => void this.#sweep(), SWEEP_MS)
    this.#sweepTimer.unref()
  }

  get context() {
    return this.#ctx
  }

  get messageLog() {
    return this.#log
  }

  get authenticate() {
    return this.#authenticate
  }

  attach(socket: WebSocket, tcp: Socket, htu: string): void {
    const session = new StreamSession(this, socket, tcp, htu)
    this.#sessions.add(session)
    this.#ctx.metrics.openSockets.inc()
    socket.once('close', () => {
      this.#sessions.delete(session)
      this.#ctx.metrics.openSockets.dec()
      if (session.staff) this.#staffConnections.disconnected(session.staff.tenantId, session.staff.staffId)
      this.unindex(session)
      void this.flushMarkers([session])
    })
  }

  /**
   * Holds a socket's writes until the end of this turn of the event loop, so that the frames written to it meanwhile
   * (a batch's messages, an echo and its ack) leave in one system call: writes are the largest cost per message. One
   * callback a turn uncorks every socket written to, rather than one per socket.
   */
  cork(tcp: Socket): void {
    if (this.#corked.has(tcp)) return
    if (this.#corked.size === 0) setImmediate(this.#uncorkAll)
    this.#corked.add(tcp)
    tcp.cork()
  }

  readonly #uncorkAll = (): void => {
    const corked = this.#corked
    this.#corked = new Set()
    for (const tcp of corked) tcp.uncork()
  }

  /** A session signed in: a staff member's console counts for their presence until it closes. */
  signedIn(session: StreamSession): void {
    if (session.staff) this.#staffConnections.connected(session.staff.tenantId, session.staff.staffId)
  }

  index(session: StreamSession, conversationId: string): void {
    const set = this.#byConversation.get(conversationId) ?? new Set()
    this.#byConversation.set(conversationId, set)
    set.add(session)
  }

  indexMember(session: StreamSession, memberKey: string): void {
    const set = this.#byMember.get(memberKey) ?? new Set()
    this.#byMember.set(memberKey, set)
    set.add(session)
  }

  unindex(session: StreamSession): void {
    for (const conversationId of session.conversationIds()) this.unindexConversation(session, conversationId)
    const set = this.#byMember.get(session.memberKey)
    set?.delete(session)
    if (set?.size === 0) this.#byMember.delete(session.memberKey)
  }

  unindexConversation(session: StreamSession, conversationId: string): void {
    const set = this.#byConversation.get(conversationId)
    set?.delete(session)
    if (set?.size === 0) this.#byConversation.delete(conversationId)
  }

  #onMessages(payload: Uint8Array): void {
    const event = JSON.parse(decoder.decode(payload)) as MessagesCommittedEvent
    for (const message of event.messages) {
      const sessions = this.#byConversation.get(message.conversationId)
      if (!sessions) continue
      const traceparent = tracingEnabled ? event.traces?.[message.id] : undefined
      const span = traceparent
        ? tracer.startSpan(
            'message deliver',
            { attributes: { 'strongroom.sockets': sessions.size } },
            contextFrom({ traceparent }),
          )
        : undefined
      // Serialized once, written to every member socket on this node.
      const frame = `{"type":"message","message":${JSON.stringify(message)}}`
      for (const session of sessions) session.deliverLive(message.conversationId, message.seq, frame)
      span?.end()
    }
  }

  #onMemberAdded(payload: Uint8Array): void {
    const event = JSON.parse(decoder.decode(payload)) as MemberAddedEvent
    const sessions = this.#byMember.get(memberKeyOf(event.tenantId, event.member))
    for (const session of sessions ?? []) session.join(event.conversationId)
  }

  #onMemberLeft(payload: Uint8Array): void {
    const event = JSON.parse(decoder.decode(payload)) as MemberLeftEvent
    const sessions = this.#byMember.get(memberKeyOf(event.tenantId, event.member))
    for (const session of sessions ?? []) session.leave(event.conversationId)
  }

  /** A device revoked or suspended on any node: its sockets here close with the code that tells the SDK which. */
  #closeDevice(payload: Uint8Array, code: number, reason: string): void {
    const event = JSON.parse(decoder.decode(payload)) as DeviceRevokedEvent | DeviceSuspendedEvent
    const sessions = this.#byMember.get(memberKeyOf(event.tenantId, { kind: 'device', id: event.deviceId }))
    for (const session of [...(sessions ?? [])]) session.close(code, reason)
  }

  /**
   * A staff token revoked or a staff member deactivated on any node: the streams it (or any of theirs) opened here are
   * refused as a revoked token would be at sign-in, and the console does not retry with it.
   */
  #closeStaff(payload: Uint8Array): void {
    const event = JSON.parse(decoder.decode(payload)) as StaffRevokedEvent
    const sessions = this.#byMember.get(memberKeyOf(event.tenantId, { kind: 'staff', id: event.staffId }))
    for (const session of [...(sessions ?? [])]) {
      if (event.tokenId === undefined || session.staffTokenId === event.tokenId) {
        session.refuse(new Problem('auth/invalid-token', 'the token was revoked'), CloseCode.unauthorized)
      }
    }
  }

  /** A customer's factors changed on any node: each of their devices connected here is told. */
  #noticeCustomer(payload: Uint8Array): void {
    const event = JSON.parse(decoder.decode(payload)) as CustomerNoticeEvent
    const frame = JSON.stringify({ type: 'notice', notice: event.notice })
    for (const session of this.#sessions) {
      if (session.tenantId === event.tenantId && session.customerId === event.customerId) session.sendFrame(frame)
    }
  }

  /**
   * A conversation's payment request, pivot link, assignment or status changed on any node: told once to each session
   * here that is in the conversation, and to the customer's devices when the event names the customer.
   */
  #onUpdate(payload: Uint8Array): void {
    const event = JSON.parse(decoder.decode(payload)) as ConversationUpdateEvent
    const frame = JSON.stringify({ type: 'update', conversationId: event.conversationId, update: event.update })
    const told = new Set<StreamSession>()
    for (const session of this.#byConversation.get(event.conversationId ?? '') ?? []) {
      if (session.tenantId === event.tenantId) told.add(session)
    }
    if (event.customerId !== undefined) {
      for (const session of this.#sessions) {
        if (session.tenantId === event.tenantId && session.customerId === event.customerId) told.add(session)
      }
    }
    for (const session of told) if (!event.knownTo?.includes(session.id)) session.sendFrame(frame)
  }

  /** A member's signal (typing, read) from any node: to the conversation's other members' sockets here, once each. */
  #onSignal(payload: Uint8Array): void {
    const event = JSON.parse(decoder.decode(payload)) as SignalRelayedEvent
    const senderKey = memberKeyOf(event.tenantId, event.sender)
    const { conversationId, sender, ciphertext } = event
    const frame = JSON.stringify({ type: 'signal', conversationId, sender, ciphertext })
    for (const session of this.#byConversation.get(conversationId) ?? []) {
      if (session.tenantId === event.tenantId && session.memberKey !== senderKey) session.sendFrame(frame)
    }
  }

  /**
   * A staff member's presence changed on any node (`presence`), or they were added or their role, name or activation
   * changed (`staff`): the tenant's staff who assign conversations here are told, and read it again.
   */
  #toAssigners(type: 'presence' | 'staff', payload: Uint8Array): void {
    const event = JSON.parse(decoder.decode(payload)) as PresenceChangedEvent | StaffChangedEvent
    const frame = JSON.stringify({ type, staffId: event.staffId })
    for (const session of this.#sessions) {
      if (session.staff?.tenantId === event.tenantId && session.staff.scopes.includes('conversations:assign')) {
        session.sendFrame(frame)
      }
    }
  }

  /**
   * A version of the app switched off on any node: the streams its copies hold open here close as a refused sign-in
   * would (the problem, then 4001), rather than reading on until their tokens run out.
   */
  #closeAppVersion(payload: Uint8Array): void {
    const event = JSON.parse(decoder.decode(payload)) as AppVersionDeactivatedEvent
    for (const session of [...this.#sessions]) {
      const app = session.app
      if (session.tenantId !== event.tenantId || app?.appId !== event.appId || app.appVersion !== event.appVersion) {
        continue
      }
      session.refuse(new Problem('integrity/denied', 'app-version-deactivated'), CloseCode.unauthorized)
    }
  }

  /**
   * Every few seconds, one read of the last sequence number of each conversation with a socket here. A socket still
   * behind what the previous sweep read (committed a whole sweep ago, so no wake-up is merely in flight) missed its
   * wake-up: core NATS carries a message at most once, and a node killed between its commit and its publish never
   * sends one. It reads the gap then, rather than when the conversation's next message wakes it.
   */
  async #sweep(): Promise<void> {
    let latest: Map<string, number>
    try {
      latest = await lastSequences(this.#ctx, [...this.#byConversation.keys()])
    } catch (error) {
      this.#ctx.log.warn({ err: error }, 'stream sweep failed')
      return
    }
    const previous = this.#previousSweep
    this.#previousSweep = latest
    for (const [conversationId, lastSeq] of previous) {
      for (const session of this.#byConversation.get(conversationId) ?? []) session.sweep(conversationId, lastSeq)
    }
  }

  /**
   * Records every socket's delivery acknowledgements in one statement, every few seconds and at close, and tells the
   * markers that moved to the conversation's other streams on every node (not those whose acknowledgements moved them).
   */
  async flushMarkers(sessions: Iterable<StreamSession> = this.#sessions): Promise<void> {
    // One entry a member and conversation (a staff member's console tabs each acknowledge): the highest, and who sent it.
    const byMember = new Map<string, DeliveredMarker & { sessionIds: string[] }>()
    for (const session of sessions) {
      for (const marker of session.takeAcknowledged()) {
        const key = markerKeyOf(marker.tenantId, marker.member, marker.conversationId)
        const known = byMember.get(key)
        if (known) {
          known.seq = Math.max(known.seq, marker.seq)
          known.sessionIds.push(session.id)
        } else byMember.set(key, { ...marker, sessionIds: [session.id] })
      }
    }
    if (byMember.size === 0) return
    const markers = [...byMember.values()]
    try {
      for (const moved of await advanceDeliveredMarkers(this.#ctx, markers)) {
        const key = markerKeyOf(moved.tenantId, moved.update.member, moved.conversationId)
        publishConversationUpdate(this.#ctx.bus, { ...moved, knownTo: byMember.get(key)?.sessionIds })
      }
    } catch (error) {
      this.#ctx.log.warn({ err: error }, 'recording delivery markers failed')
    }
  }

  /** Graceful shutdown: every client is told where to resume, then its socket closes with 1012 (service restart). */
  async close(): Promise<void> {
    for (const unsubscribe of this.#unsubscribe) unsubscribe()
    clearInterval(this.#markerTimer)
    clearInterval(this.#sweepTimer)
    await this.flushMarkers()
    for (const session of this.#sessions) session.close(CloseCode.serviceRestart, 'server shutting down')
    await this.#staffConnections.close()
  }
}

function memberKeyOf(tenantId: string, member: { kind: string; id: string }): string {
  return `${tenantId}\u0000${member.kind}\u0000${member.id}`
}

const markerKeyOf = (tenantId: string, member: { kind: string; id: string }, conversationId: string) =>
  `${memberKeyOf(tenantId, member)}\u0000${conversationId}`

class StreamSession {
  readonly #hub: StreamHub
  readonly #socket: WebSocket
  readonly #tcp: Socket
  readonly #htu: string
  readonly id = randomUUID()
  #principal: Principal | undefined
  /** Holds each frame after sign-in to the rule of its HTTP route. */
  #guard: ActionGuard = async () => {
    throw new Problem('auth/missing-credentials')
  }
  /** The app a device's integrity token vouched for at sign-in, when it was checked. */
  app: { appId: string; appVersion: string } | undefined
  memberKey = ''
  /** Last sequence number written to this socket, per conversation it may see. */
  readonly #cursors = new Map<string, number>()
  /** Conversations being read from the database; the highest live sequence seen meanwhile. */
  readonly #catchingUp = new Map<string, number>()
  readonly #ackedDirty = new Map<string, number>()
  /** Per conversation, the highest sequence number a sweep found this socket behind (each gap is swept once). */
  readonly #swept = new Map<string, number>()
  /** While signing in: the memberships added or ended since the session was registered, applied once it is ready. */
  #membershipChanges: (() => void)[] | undefined
  #closed = false
  /** Told `ready`: frames other than the sign-in's own may follow. */
  #ready = false
  #alive = true
  #frameBudget = Number.POSITIVE_INFINITY
  #frameBudgetAt = 0
  #timers: NodeJS.Timeout[] = []

  constructor(hub: StreamHub, socket: WebSocket, tcp: Socket, htu: string) {
    this.#hub = hub
    this.#socket = socket
    this.#tcp = tcp
    this.#htu = htu
    const authTimer = setTimeout(() => this.close(CloseCode.unauthorized, 'no auth frame in time'), AUTH_TIMEOUT_MS)
    this.#timers.push(authTimer)
    socket.on('message', (data, isBinary) => {
      if (isBinary) return this.close(CloseCode.protocolError, 'frames are JSON text')
      this.#onFrame(data.toString()).catch((error) => {
        // A frame must never take the process down: end this one connection. A database that went away is a reason
        // to come back (1012, the client resumes from its cursors); anything else is logged as a fault.
        if (asProblem(error).kind === 'server/unavailable') {
          return this.close(CloseCode.serviceRestart, 'database unavailable')
        }
        this.#hub.context.log.error({ err: error }, 'stream frame failed')
        this.close(CloseCode.protocolError, 'internal error')
      })
    })
    socket.on('pong', () => {
      this.#alive = true
    })
    socket.once('close', () => {
      this.#closed = true
      for (const timer of this.#timers) clearTimeout(timer)
    })
    socket.on('error', () => {})
  }

  conversationIds(): IterableIterator<string> {
    return this.#cursors.keys()
  }

  #send(frame: string): boolean {
    if (this.#closed) return false
    if (this.#socket.bufferedAmount > this.#hub.context.config.streamMaxBufferedBytes) {
      this.#hub.context.metrics.slowConsumers.inc()
      this.close(CloseCode.slowConsumer, 'slow consumer')
      return false
    }
    this.#hub.cork(this.#tcp)
    this.#socket.send(frame)
    return true
  }

  #sendJson(value: unknown): boolean {
    return this.#send(JSON.stringify(value))
  }

  #sendProblem(problem: unknown, ref?: string): void {
    const body = asProblem(problem).toBody()
    this.#sendJson(ref === undefined ? { type: 'error', problem: body } : { type: 'error', ref, problem: body })
  }

  get tenantId(): string | undefined {
    return this.#principal?.tenantId
  }

  /** The token a staff member signed in with, if staff hold this session. */
  get staffTokenId(): string | undefined {
    return this.#principal?.kind === 'staff' ? this.#principal.tokenId : undefined
  }

  /** The staff member who holds this session, once it is ready (signed in, told `ready`), if staff do. */
  get staff(): Extract<Principal, { kind: 'staff' }> | undefined {
    return this.#ready && this.#principal?.kind === 'staff' ? this.#principal : undefined
  }

  /** The customer whose device holds this session, if a device does. */
  get customerId(): string | undefined {
    return this.#principal?.kind === 'device' ? this.#principal.customerId : undefined
  }

  /** Writes a frame the hub serialized (a notice). */
  sendFrame(frame: string): void {
    this.#send(frame)
  }

  /** Says why the session may not go on, then closes. */
  refuse(problem: Problem, code: number): void {
    this.#sendProblem(problem)
    this.close(code, problem.detail ?? problem.kind)
  }

  /** Tells the client where to resume (its cursors) and closes. */
  close(code: number, reason: string): void {
    if (this.#closed) return
    if (this.#principal && this.#socket.readyState === this.#socket.OPEN) {
      this.#socket.send(JSON.stringify({ type: 'closing', reason, cursors: Object.fromEntries(this.#cursors) }))
    }
    this.#closed = true
    this.#socket.close(code, reason)
    // A peer that never answers the close handshake is cut off.
    setTimeout(() => this.#socket.terminate(), 2000).unref()
  }

  /**
   * A token bucket per socket: STRONGROOM_STREAM_FRAMES_PER_SECOND frames a second, with bursts of twice that. A frame
   * over it is refused on its own (the client may send it again), so that one socket cannot monopolise the node.
   */
  #takeFrameBudget(): boolean {
    const rate = this.#hub.context.config.streamFramesPerSecond
    const now = performance.now()
    this.#frameBudget = Math.min(2 * rate, this.#frameBudget + ((now - this.#frameBudgetAt) * rate) / 1000)
    this.#frameBudgetAt = now
    if (this.#frameBudget < 1) return false
    this.#frameBudget -= 1
    return true
  }

  async #onFrame(text: string): Promise<void> {
    let frame: unknown
    try {
      frame = JSON.parse(text)
    } catch {
      return this.close(CloseCode.protocolError, 'malformed JSON')
    }
    if (!this.#principal) return this.#onAuth(frame)
    const ref = (frame as { ref?: unknown })?.ref
    if (!this.#takeFrameBudget()) {
      this.#hub.context.metrics.rateLimited.inc({ limit: 'stream-frames', key: 'socket' })
      const problem = new Problem('request/rate-limited', 'too many frames on this stream; slow down')
      return this.#sendProblem(problem, typeof ref === 'string' ? ref : undefined)
    }
    if (!clientFrameCheck.Check(frame)) {
      const first = clientFrameCheck.Errors(frame).First()
      const problem = new Problem('request/invalid', first ? `${first.path || '/'}: ${first.message}` : undefined)
      return this.#sendProblem(problem, typeof ref === 'string' ? ref : undefined)
    }
    if (hasUnstorableText(frame)) {
      const problem = new Problem(
        'request/unstorable-value',
        'text may not contain NUL characters or unpaired surrogates',
      )
      return this.#sendProblem(problem, typeof ref === 'string' ? ref : undefined)
    }
    await this.#onClientFrame(frame)
  }

  async #onAuth(frame: unknown): Promise<void> {
    if (!authFrameCheck.Check(frame)) return this.close(CloseCode.unauthorized, 'the first frame must be auth')
    let principal: Principal
    try {
      ;({ principal, app: this.app, guard: this.#guard } = await this.#hub.authenticate(frame, this.#htu))
    } catch (error) {
      this.#sendProblem(error)
      // A revoked device got its wipe command in the problem, a suspended one the reason: neither reconnects.
      if (error instanceof Problem && error.kind === 'identity/device-wiped') {
        return this.close(CloseCode.revoked, 'device revoked')
      }
      if (error instanceof Problem && error.kind === 'identity/device-suspended') {
        return this.close(CloseCode.suspended, 'device suspended')
      }
      const forbidden = error instanceof Problem && error.kind === 'auth/forbidden'
      return this.close(CloseCode.unauthorized, forbidden ? 'forbidden' : 'authentication failed')
    }
    if (this.#closed) return
    this.#principal = principal
    const member = principalMember(principal)
    this.memberKey = memberKeyOf(principal.tenantId, member)
    const ctx = this.#hub.context
    // Registered before anything is read, so no wake-up is lost while signing in: memberships added or ended meanwhile
    // wait in #membershipChanges, and a conversation's live messages are held by its catch-up marker until it is read.
    this.#membershipChanges = []
    this.#hub.indexMember(this, this.memberKey)
    const known = await memberConversationCursors(ctx, principal.tenantId, member)
    if (this.#closed) return
    for (const c of known) this.#register(c.conversationId, frame.cursors?.[c.conversationId] ?? c.deliveredSeq)
    // Read again now that every conversation is registered: whatever committed before this read is in it, and whatever
    // commits after wakes this session. The catch-up compares against this fresh state, not the first read.
    const conversations = await memberConversationCursors(ctx, principal.tenantId, member)
    if (this.#closed) return
    const registered = new Set(known.map((c) => c.conversationId))
    for (const c of conversations) {
      if (!registered.has(c.conversationId)) {
        this.#register(c.conversationId, frame.cursors?.[c.conversationId] ?? c.deliveredSeq)
      }
    }
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers = [setInterval(() => this.#heartbeat(), ctx.config.streamHeartbeatMs)]
    // A socket lives no longer than the token that opened it; the client reconnects with a fresh one.
    const remaining = Math.min(principal.tokenExpiresAt.getTime() - Date.now(), 2 ** 31 - 1)
    this.#timers.push(setTimeout(() => this.close(CloseCode.tokenExpired, 'access token expired'), remaining))
    this.#sendJson({
      type: 'ready',
      sessionId: this.id,
      heartbeatMs: ctx.config.streamHeartbeatMs,
      conversations: conversations.map((c) => ({ conversationId: c.conversationId, lastSeq: c.lastSeq })),
    })
    this.#ready = true
    this.#hub.signedIn(this)
    for (const c of conversations) {
      const cursor = this.#cursors.get(c.conversationId) ?? 0
      const newestLive = this.#catchingUp.get(c.conversationId) ?? 0
      // The hold is let go here; a catch-up takes it again at once when there is something to read.
      this.#catchingUp.delete(c.conversationId)
      if (!registered.has(c.conversationId) || c.lastSeq > cursor || newestLive > cursor) {
        void this.#catchUp(c.conversationId)
      }
    }
    // A conversation of the first read that the second no longer has: the membership ended meanwhile.
    const current = new Set(conversations.map((c) => c.conversationId))
    for (const conversationId of registered) {
      if (current.has(conversationId)) continue
      this.#cursors.delete(conversationId)
      this.#catchingUp.delete(conversationId)
      this.#hub.unindexConversation(this, conversationId)
    }
    const changes = this.#membershipChanges
    this.#membershipChanges = undefined
    for (const change of changes) change()
  }

  /** Adds a conversation to a session signing in, its live messages held until its first read. */
  #register(conversationId: string, cursor: number): void {
    this.#cursors.set(conversationId, cursor)
    this.#catchingUp.set(conversationId, 0)
    this.#hub.index(this, conversationId)
  }

  #heartbeat(): void {
    if (!this.#alive) {
      this.#socket.terminate()
      return
    }
    this.#alive = false
    this.#socket.ping()
    this.#sendJson({ type: 'heartbeat' })
  }

  async #onClientFrame(frame: ClientFrame): Promise<void> {
    const principal = this.#principal as Principal
    switch (frame.type) {
      case 'ping':
        this.#sendJson({ type: 'pong' })
        return
      case 'ack': {
        if (!this.#cursors.has(frame.conversationId)) return
        // An ack has no answer: one its route's rule refuses (a limited integrity token) is dropped.
        const conversation = { id: frame.conversationId, joined: true }
        const admitted = await this.#guard(messageActions.mark, conversation).then(
          () => true,
          () => false,
        )
        if (!admitted || !this.#cursors.has(frame.conversationId)) return
        const current = this.#ackedDirty.get(frame.conversationId) ?? 0
        this.#ackedDirty.set(frame.conversationId, Math.max(current, frame.seq))
        return
      }
      case 'signal':
        return this.#onSignal(principal, frame)
      case 'send':
        if (tracingEnabled) return inSpan('stream send', ROOT_CONTEXT, () => this.#onSend(principal, frame))
        return this.#onSend(principal, frame)
    }
  }

  async #onSend(principal: Principal, frame: Extract<ClientFrame, { type: 'send' }>): Promise<void> {
    const ctx = this.#hub.context
    try {
      // A conversation this stream joined is one the principal is a member of; any other is looked up, as over HTTP.
      await this.#guard(messageActions.send, {
        id: frame.conversationId,
        joined: this.#cursors.has(frame.conversationId),
      })
      const result = await sendMessage(ctx, this.#hub.messageLog, principal, frame)
      const { message, created } = result
      this.#sendJson({
        type: 'sent',
        ref: frame.ref,
        created,
        message: {
          id: message.id,
          conversationId: message.conversationId,
          seq: message.seq,
          createdAt: message.createdAt,
          expiresAt: message.expiresAt,
        },
      })
    } catch (error) {
      if (!(error instanceof Problem)) ctx.log.error({ err: error }, 'stream send failed')
      this.#sendProblem(error, frame.ref)
    }
  }

  /** Relays a signal under the rule of a send; answers `signalled`, or the refusal. Nothing is stored or re-sent. */
  async #onSignal(principal: Principal, frame: Extract<ClientFrame, { type: 'signal' }>): Promise<void> {
    try {
      await this.#guard(messageActions.send, {
        id: frame.conversationId,
        joined: this.#cursors.has(frame.conversationId),
      })
      await relaySignal(this.#hub.context, this.#hub.messageLog, principal, frame)
      this.#sendJson({ type: 'signalled', ref: frame.ref })
    } catch (error) {
      if (!(error instanceof Problem)) this.#hub.context.log.error({ err: error }, 'stream signal failed')
      this.#sendProblem(error, frame.ref)
    }
  }

  deliverLive(conversationId: string, seq: number, frame: string): void {
    if (this.#closed) return
    const cursor = this.#cursors.get(conversationId)
    if (cursor === undefined) return
    const pending = this.#catchingUp.get(conversationId)
    if (pending !== undefined) {
      this.#catchingUp.set(conversationId, Math.max(pending, seq))
      return
    }
    if (seq <= cursor) return
    if (seq === cursor + 1) {
      if (this.#send(frame)) {
        this.#cursors.set(conversationId, seq)
        this.#hub.context.metrics.messagesDelivered.inc()
      }
      return
    }
    void this.#catchUp(conversationId)
  }

  join(conversationId: string): void {
    if (this.#membershipChanges) {
      this.#membershipChanges.push(() => this.join(conversationId))
      return
    }
    if (this.#closed || this.#cursors.has(conversationId)) return
    this.#cursors.set(conversationId, 0)
    this.#hub.index(this, conversationId)
    this.#sendJson({ type: 'joined', conversationId })
    void this.#catchUp(conversationId)
  }

  /** No longer a member: nothing more of the conversation reaches this socket, and the client is told. */
  leave(conversationId: string): void {
    if (this.#membershipChanges) {
      this.#membershipChanges.push(() => this.leave(conversationId))
      return
    }
    if (this.#closed || !this.#cursors.delete(conversationId)) return
    this.#catchingUp.delete(conversationId)
    this.#ackedDirty.delete(conversationId)
    this.#swept.delete(conversationId)
    this.#hub.unindexConversation(this, conversationId)
    this.#sendJson({ type: 'left', conversationId })
  }

  /**
   * The hub's sweep: `lastSeq` was committed a sweep ago. Behind it, this socket missed a wake-up, and reads the gap.
   * A gap that holds only expired messages stays behind its cursor; it is read once, not at every sweep.
   */
  sweep(conversationId: string, lastSeq: number): void {
    const cursor = this.#cursors.get(conversationId)
    if (cursor === undefined || cursor >= lastSeq || (this.#swept.get(conversationId) ?? 0) >= lastSeq) return
    this.#swept.set(conversationId, lastSeq)
    this.#hub.context.metrics.missedWakeUps.inc()
    void this.#catchUp(conversationId)
  }

  resyncAll(): void {
    for (const conversationId of this.#cursors.keys()) void this.#catchUp(conversationId)
  }

  /** Reads what this socket has not seen of a conversation from the database, page by page, then goes live again. */
  async #catchUp(conversationId: string): Promise<void> {
    if (this.#catchingUp.has(conversationId) || !this.#principal) return
    this.#catchingUp.set(conversationId, 0)
    const ctx = this.#hub.context
    ctx.metrics.catchUps.inc()
    try {
      for (;;) {
        const after = this.#cursors.get(conversationId)
        if (after === undefined) return // left the conversation meanwhile
        const page = await fetchMessages(ctx, this.#principal.tenantId, conversationId, {
          afterSeq: after,
          limit: CATCH_UP_PAGE,
        })
        for (const message of page) {
          if (!this.#cursors.has(conversationId)) return
          if (!this.#send(`{"type":"message","message":${JSON.stringify(message)}}`)) return
          this.#cursors.set(conversationId, message.seq)
        }
        ctx.metrics.messagesDelivered.inc(page.length)
        const newestLive = this.#catchingUp.get(conversationId) ?? 0
        if (page.length < CATCH_UP_PAGE && newestLive <= (this.#cursors.get(conversationId) ?? 0)) return
        this.#catchingUp.set(conversationId, 0)
        await this.#drain()
        if (this.#closed) return
      }
    } catch (error) {
      ctx.log.error({ err: error, conversationId }, 'stream catch-up failed')
      this.close(CloseCode.serviceRestart, 'catch-up failed')
    } finally {
      this.#catchingUp.delete(conversationId)
    }
  }

  /**
   * Waits while the socket holds more than half its allowance, so a backlog is paced rather than buffered; a client
   * that reads nothing for two heartbeats is a slow consumer.
   */
  async #drain(): Promise<void> {
    const { config, metrics } = this.#hub.context
    const deadline = Date.now() + 2 * config.streamHeartbeatMs
    while (!this.#closed && this.#socket.bufferedAmount > config.streamMaxBufferedBytes / 2) {
      if (Date.now() > deadline) {
        metrics.slowConsumers.inc()
        this.close(CloseCode.slowConsumer, 'slow consumer')
        return
      }
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }

  /** The delivery acknowledgements gathered since the last flush, handed over once. */
  takeAcknowledged(): DeliveredMarker[] {
    if (!this.#principal || this.#ackedDirty.size === 0) return []
    const member = principalMember(this.#principal)
    const tenantId = this.#principal.tenantId
    const markers = [...this.#ackedDirty].map(([conversationId, seq]) => ({ tenantId, conversationId, member, seq }))
    this.#ackedDirty.clear()
    return markers
  }
}
