import {
  base64ToBytes,
  enrolDevice,
  type MemberClient,
  type MessageStream,
  StaffClient,
  StaffToken,
} from '@strongroom/sdk'
import { pinnedFetch } from '@strongroom/sdk/pins-node'
import WebSocket from 'ws'
import { type RunningCluster, staffOfNewBank } from './local-cluster.ts'

/**
 * Steady message traffic through a running cluster, and the exactly-once check of it: what `npm run soak` and the
 * fault tests drive. Each conversation has a customer with two devices: one sends (over its stream, or as the bank's
 * agent over HTTP), the other receives on its stream. Half of the clients go straight to the nodes with the SDK's
 * failover list (each starting on a different node), half through HAProxy's TLS port.
 */

/** One way into the cluster: the SDK's list of URLs, and for HAProxy a fetch and WebSocket trusting its certificate. */
interface Route {
  name: 'direct' | 'haproxy'
  baseUrl: string[]
  fetch?: typeof fetch
  certificate?: string
}

/** What a receiver saw on the wire, frame by frame, before the SDK drops anything it has seen already. */
interface WireFrame {
  id: string
  seq: number
  at: number
}

interface Sent {
  conversation: number
  /** The run (scenario) it was sent in, and its number within its conversation. */
  run: string
  k: number
  startedAt: number
  ackedAt?: number
  id?: string
  seq?: number
}

interface Conversation {
  index: number
  id: string
  sender: { kind: 'stream' | 'http'; client: MemberClient; stream?: MessageStream; route: Route }
  receiver: { client: MemberClient; stream: MessageStream; route: Route }
  /** Frames on the receiver's sockets; deliveries to the application (after the SDK's own de-duplication). */
  wire: WireFrame[]
  delivered: { id: string; seq: number; at: number; run: string; k: number; sentAt: number }[]
}

/** The exactly-once figures of one run, and how long it took after the fault until every client was served again. */
export interface LoadReport {
  acknowledged: number
  delivered: number
  lost: number
  duplicated: number
  reordered: number
  /** Delivered although its sender never had it acknowledged (a write the client gave up on must not appear). */
  unacknowledgedShown: number
  /** From the fault until every sender had an acknowledgement and every receiver a delivery again (ms). */
  recoverMs: number | null
  /** The longest send-to-deliver time of the run (ms). */
  maxLatencyMs: number
  /** The client that waited longest after the fault. */
  slowest?: string
  /** What was lost, if anything: which conversation, and where its receiver stood. */
  lostMessages?: string[]
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** A WebSocket class that records every message frame a receiver's sockets get, and trusts `certificate`. */
function tappedWebSocket(wire: WireFrame[] | undefined, certificate: string | undefined): never {
  class Tapped extends WebSocket {
    constructor(url: string) {
      super(url, certificate ? { ca: certificate } : {})
      if (wire) {
        this.on('message', (data) => {
          const frame = JSON.parse(String(data)) as { type: string; message?: { id: string; seq: number } }
          if (frame.type === 'message' && frame.message) {
            wire.push({ id: frame.message.id, seq: frame.message.seq, at: performance.now() })
          }
        })
      }
    }
  }
  return Tapped as never
}

export interface LoadOptions {
  conversations: number
  /** Requests time out after this and go to the next node (the SDK's timeoutMs). */
  timeoutMs?: number
  /**
   * Keep every message sent and delivered for the exactly-once report, and every frame on the receivers' sockets
   * (the fault tests); or only counts and latencies (the soak, which runs for an hour).
   */
  record?: boolean
}

export class ClusterLoad {
  readonly conversations: Conversation[] = []
  readonly #sent = new Map<string, Sent>()
  readonly #record: boolean
  /** Send-to-deliver times (ms) not yet taken, when messages are not recorded one by one (the soak). */
  latencies: number[] = []
  acknowledgedCount = 0
  deliveredCount = 0
  #running: Promise<void>[] = []
  #stopping = false

  private constructor(record: boolean) {
    this.#record = record
  }

  /**
   * Makes a bank (tenant and agent through the CLI), its customers, their devices and conversations, and opens the
   * receivers' streams.
   */
  static async prepare(cluster: RunningCluster, options: LoadOptions): Promise<ClusterLoad> {
    const load = new ClusterLoad(options.record ?? true)
    const timeoutMs = options.timeoutMs ?? 10_000
    const agent = await staffOfNewBank(cluster, 'agent')
    const nodeUrls = cluster.nodes.map((node) => node.url)
    const direct = (i: number): Route => ({
      name: 'direct',
      baseUrl: nodeUrls.map((_, j) => nodeUrls[(i + j) % nodeUrls.length] as string),
    })
    const haproxy: Route = {
      name: 'haproxy',
      baseUrl: [cluster.url],
      fetch: pinnedFetch({ version: 1, notBefore: '', notAfter: '', hosts: {} }, { ca: cluster.caCertificate }),
      certificate: cluster.caCertificate,
    }
    const staff = (route: Route) =>
      new StaffClient({
        baseUrl: route.baseUrl,
        credentials: new StaffToken(agent.token),
        timeoutMs,
        ...(route.fetch ? { fetch: route.fetch } : {}),
      })
    const admin = staff(direct(0))
    const prepareOne = async (index: number): Promise<Conversation> => {
      // Every combination: stream or HTTP sender, each side direct or through HAProxy.
      const senderRoute = (index >> 1) % 2 === 0 ? direct(index) : haproxy
      const receiverRoute = (index >> 2) % 2 === 0 ? direct(index) : haproxy
      // A creation that failed on every node may have run on one all the same; called again it has a new
      // Idempotency-Key and meets its own reference (409): a new reference then, leaving a customer nobody uses.
      const customer = await admin
        .createCustomer({ externalRef: `L-${index}`, displayName: `Load ${index}` })
        .catch(() => admin.createCustomer({ externalRef: `L-${index}-again`, displayName: `Load ${index}` }))
      const enrol = async (route: Route, label: string, wire?: WireFrame[]) => {
        // A busy machine may answer an enrolment later than the load's short timeout: a fresh code, once more.
        for (let attempt = 1; ; attempt++) {
          try {
            const enrolled = await enrolDevice({
              baseUrl: route.baseUrl,
              enrolmentCode: (await admin.issueEnrolmentCode(customer.id)).code,
              label,
              timeoutMs,
              WebSocket: tappedWebSocket(wire, route.certificate),
              ...(route.fetch ? { fetch: route.fetch } : {}),
            })
            return enrolled.client
          } catch (error) {
            if (attempt === 3) throw error
          }
        }
      }
      const wire: WireFrame[] = []
      const [receiverClient, senderDevice] = await Promise.all([
        enrol(receiverRoute, 'receiver', options.record === false ? undefined : wire),
        index % 2 === 0 ? enrol(senderRoute, 'sender') : undefined,
      ])
      // The customer's devices enrolled so far are the conversation's members.
      const { id } = await admin.createConversation({ customerId: customer.id, assignedStaffId: agent.staffId })
      const entry: Conversation = {
        index,
        id,
        sender: senderDevice
          ? { kind: 'stream', client: senderDevice, stream: senderDevice.stream(), route: senderRoute }
          : { kind: 'http', client: staff(senderRoute), route: senderRoute },
        receiver: {
          client: receiverClient,
          route: receiverRoute,
          stream: receiverClient.stream({ onMessage: (message) => load.#delivered(entry, message) }),
        },
        wire,
        delivered: [],
      }
      return entry
    }
    load.conversations.push(
      ...(await Promise.all(Array.from({ length: options.conversations }, (_, index) => prepareOne(index)))),
    )
    await Promise.all(
      load.conversations.flatMap((c) => [c.receiver.stream.ready(), c.sender.stream?.ready()].filter(Boolean)),
    )
    return load
  }

  #delivered(conversation: Conversation, message: { id: string; seq: number; ciphertext: string }): void {
    const body = JSON.parse(decoder.decode(base64ToBytes(message.ciphertext))) as { r: string; k: number; t: number }
    const at = performance.now()
    this.deliveredCount++
    if (!this.#record) {
      this.latencies.push(at - body.t)
      return
    }
    conversation.delivered.push({ id: message.id, seq: message.seq, at, run: body.r, k: body.k, sentAt: body.t })
  }

  /**
   * Starts a run: each conversation's sender sends one message at a time, one every `intervalMs` at most, and
   * retries a send that failed with the same clientMessageId until it is acknowledged.
   */
  start(run: string, intervalMs: number): void {
    this.#stopping = false
    this.#running = this.conversations.map(async (conversation) => {
      // Spread over the interval, so that the conversations do not all send at once.
      let next = performance.now() + (intervalMs * conversation.index) / this.conversations.length
      for (let k = 0; !this.#stopping; k++) {
        const wait = next - performance.now()
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
        // Behind schedule (a stall): carry on from now rather than catching up in a burst.
        next = Math.max(next, performance.now() - intervalMs) + intervalMs
        const key = `${run}-${conversation.index}-${k}`
        const sent: Sent = { conversation: conversation.index, run, k, startedAt: performance.now() }
        if (this.#record) this.#sent.set(key, sent)
        const ciphertext = encoder.encode(JSON.stringify({ r: run, k, t: sent.startedAt }))
        for (;;) {
          try {
            const message = { clientMessageId: key, contentType: 'text/plain', ciphertext }
            const answer =
              conversation.sender.kind === 'stream'
                ? await (conversation.sender.stream as MessageStream).send(conversation.id, message)
                : await conversation.sender.client.sendMessage(conversation.id, message)
            Object.assign(sent, { ackedAt: performance.now(), id: answer.id, seq: answer.seq })
            this.acknowledgedCount++
            break
          } catch (error) {
            // No answer, or an error answer (a node going away, the database restarting): the same message again,
            // even while stopping, since it may have been committed. A minute of refusals is a failure.
            if (performance.now() - sent.startedAt > 60_000) throw error
            await new Promise((resolve) => setTimeout(resolve, 100))
          }
        }
      }
    })
  }

  /** Stops sending once every send in flight has its answer (or gave up). */
  async stop(): Promise<void> {
    this.#stopping = true
    await Promise.all(this.#running)
  }

  /** Waits until every message acknowledged in `run` has reached its receiver, or `timeoutMs` passed. */
  async settle(run: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    const missing = () =>
      [...this.#sent.values()].some(
        (sent) =>
          sent.run === run &&
          sent.id !== undefined &&
          !this.conversations[sent.conversation]?.delivered.some((d) => d.id === sent.id),
      )
    while (missing() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
    // Anything late (a duplicate, a phantom) has a moment to show up before the figures are taken.
    await new Promise((resolve) => setTimeout(resolve, 500))
  }

  /** The figures of `run`, with the fault at `faultAt` (performance.now()) if there was one. */
  report(run: string, faultAt?: number): LoadReport {
    const sent = [...this.#sent.values()].filter((s) => s.run === run)
    const acked = sent.filter((s) => s.id !== undefined)
    let delivered = 0
    let duplicated = 0
    let reordered = 0
    let unacknowledgedShown = 0
    let maxLatencyMs = 0
    const ackedIds = new Set(acked.map((s) => s.id))
    const deliveredIds = new Set<string>()
    for (const conversation of this.conversations) {
      const ofRun = conversation.delivered.filter((d) => d.run === run)
      delivered += ofRun.length
      for (const d of ofRun) {
        maxLatencyMs = Math.max(maxLatencyMs, d.at - d.sentAt)
        deliveredIds.add(d.id)
        if (!ackedIds.has(d.id)) unacknowledgedShown++
      }
      const runIds = new Set(ofRun.map((d) => d.id))
      // On the wire, before the SDK's de-duplication: a frame seen twice, or one below a sequence number already seen.
      const seen = new Set<string>()
      let highest = 0
      for (const frame of conversation.wire.length > 0 ? conversation.wire : ofRun) {
        if (!runIds.has(frame.id)) continue
        if (seen.has(frame.id)) duplicated++
        else if (frame.seq < highest) reordered++
        seen.add(frame.id)
        highest = Math.max(highest, frame.seq)
      }
    }
    const lostOnes = acked.filter((s) => !deliveredIds.has(s.id as string))
    let recoverMs: number | null = null
    let slowest: string | undefined
    if (faultAt !== undefined) {
      const firstAfter = (times: number[]) => times.filter((t) => t > faultAt).sort((a, b) => a - b)[0]
      const waits = this.conversations.flatMap((conversation) => [
        {
          who: `${this.describe(conversation)} sender`,
          at: firstAfter(
            sent.filter((s) => s.conversation === conversation.index && s.ackedAt).map((s) => s.ackedAt as number),
          ),
        },
        {
          who: `${this.describe(conversation)} receiver`,
          at: firstAfter(conversation.delivered.filter((d) => d.run === run).map((d) => d.at)),
        },
      ])
      const last = waits.reduce((a, b) => ((a.at ?? Infinity) >= (b.at ?? Infinity) ? a : b))
      slowest = last.who
      recoverMs = last.at === undefined ? null : Math.round(last.at - faultAt)
    }
    return {
      acknowledged: acked.length,
      delivered,
      lost: lostOnes.length,
      duplicated,
      reordered,
      unacknowledgedShown,
      recoverMs,
      maxLatencyMs: Math.round(maxLatencyMs),
      ...(slowest ? { slowest } : {}),
      ...(lostOnes.length > 0 && {
        lostMessages: lostOnes.map((s) => {
          const conversation = this.conversations[s.conversation] as Conversation
          return `${this.describe(conversation)} seq ${s.seq}, receiver at seq ${conversation.receiver.stream.cursors[conversation.id]} (${conversation.receiver.stream.state})`
        }),
      }),
    }
  }

  /** A conversation's clients as the figures name them: `c3 (http via haproxy -> direct on http://…)`. */
  describe(conversation: Conversation): string {
    const where = (side: { route: Route; client: MemberClient }) =>
      side.route.name === 'haproxy' ? 'via haproxy' : `direct on ${side.client.baseUrl}`
    return `c${conversation.index} (${conversation.sender.kind} ${where(conversation.sender)} -> ${where(conversation.receiver)})`
  }

  close(): void {
    for (const conversation of this.conversations) {
      conversation.receiver.stream.close()
      conversation.sender.stream?.close()
    }
  }
}
