import { type Context, context } from '@opentelemetry/api'
import { sql } from 'kysely'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'
import { traceparentOf, tracer, tracingEnabled } from '../platform/tracing.ts'
import { publishMessagesCommitted, type WireMessage } from './bus-events.ts'

export interface AppendInput {
  tenantId: string
  conversationId: string
  /** A member, the archive, or (for public channels) the customer on the channel or Strongroom itself. */
  sender: { kind: 'device' | 'staff' | 'archive' | 'channel' | 'system'; id: string }
  clientMessageId: string
  contentType: string
  ciphertext: Buffer
  expiresAt: Date | null
}

/**
 * A check every appended message passes before it is queued (the MLS delivery service's framing and epoch rule),
 * given the messages of one conversation (of one tenant) that arrived while its previous check ran, in arrival order: one read of
 * the conversation's state serves them all. Answers per message undefined to admit it, or the error (a Problem) that
 * refuses it.
 */
export type MessageAdmission = (inputs: AppendInput[]) => Promise<(unknown | undefined)[]>

export interface AppendResult {
  message: WireMessage
  /** False when the client message id had been used before and the earlier message is returned. */
  created: boolean
}

interface Pending {
  input: AppendInput
  resolve: (result: AppendResult) => void
  reject: (error: unknown) => void
  /** With tracing on: the request or frame that appended it, whose trace its commit joins. */
  trace?: Context
}

const MAX_BATCH = 500
/** Batches in flight at once per node: one commits while the next is written. */
const WRITERS = 2

/**
 * The message log's writer. Appends that arrive while commits are in flight (or within `commitDelayMs`) are written
 * together in one statement, so throughput is not bound by one durable commit per message. Each append resolves only
 * after its batch has committed, and every message gets the next gapless sequence number of its conversation inside
 * that commit. Up to WRITERS batches are in flight at once, never two holding the same conversation, so a
 * conversation's messages are numbered in the order they arrived here; across nodes, conversations are locked in id
 * order so batches wait for each other instead of deadlocking.
 */
export class MessageLog {
  readonly #ctx: Pick<ServerContext, 'db' | 'bus' | 'metrics' | 'log' | 'config'>
  #queue: Pending[] = []
  readonly #inFlight = new Set<Promise<void>>()
  readonly #busyConversations = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  #closed = false
  readonly #admit: MessageAdmission | undefined
  /**
   * Per conversation (and tenant) with a check in progress, the appends that arrived meanwhile: they are checked together next.
   * Checks of a conversation run one after another and admit in arrival order, so order is kept.
   */
  readonly #admissions = new Map<string, Pending[]>()

  constructor(ctx: Pick<ServerContext, 'db' | 'bus' | 'metrics' | 'log' | 'config'>, admit?: MessageAdmission) {
    this.#ctx = ctx
    this.#admit = admit
  }

  append(input: AppendInput): Promise<AppendResult> {
    if (this.#closed) return Promise.reject(new Problem('server/unavailable', 'the server is shutting down'))
    if (!this.#admit) return this.#enqueue(input)
    return new Promise((resolve, reject) => {
      const key = `${input.tenantId}\u0000${input.conversationId}`
      const waiting = this.#admissions.get(key)
      if (waiting) return waiting.push({ input, resolve, reject })
      this.#admissions.set(key, [{ input, resolve, reject }])
      void this.#admitQueued(this.#admit as MessageAdmission, key)
    })
  }

  /** Checks what waits for a conversation's admission, in groups, until nothing more arrived meanwhile. */
  async #admitQueued(admit: MessageAdmission, key: string): Promise<void> {
    for (;;) {
      const batch = this.#admissions.get(key) ?? []
      if (batch.length === 0) {
        this.#admissions.delete(key)
        return
      }
      this.#admissions.set(key, [])
      const refusals = await admit(batch.map((p) => p.input)).catch((error: unknown) => batch.map(() => error))
      for (const [i, p] of batch.entries()) {
        const refused = refusals[i]
        if (refused !== undefined) p.reject(refused)
        else this.#enqueue(p.input).then(p.resolve, p.reject)
      }
    }
  }

  #enqueue(input: AppendInput): Promise<AppendResult> {
    if (this.#closed) return Promise.reject(new Problem('server/unavailable', 'the server is shutting down'))
    return new Promise((resolve, reject) => {
      this.#queue.push(
        tracingEnabled ? { input, resolve, reject, trace: context.active() } : { input, resolve, reject },
      )
      if (!this.#timer && this.#inFlight.size < WRITERS) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined
          this.#pump()
        }, this.#ctx.config.commitDelayMs)
      }
    })
  }

  /** Stops taking appends and waits until everything queued has been committed. */
  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    while (this.#queue.length > 0 || this.#inFlight.size > 0) {
      this.#pump()
      await Promise.all(this.#inFlight)
    }
  }

  /** Starts batches while writers are free and queued appends are not waiting on a busy conversation. */
  #pump(): void {
    while (this.#inFlight.size < WRITERS && this.#queue.length > 0) {
      const batch = this.#takeBatch()
      if (batch.length === 0) return
      const conversations = new Set(batch.map((p) => p.input.conversationId))
      for (const id of conversations) this.#busyConversations.add(id)
      const commit: Promise<void> = this.#commit(batch).finally(() => {
        for (const id of conversations) this.#busyConversations.delete(id)
        this.#inFlight.delete(commit)
        // What arrived meanwhile goes at once: it has already waited for a commit.
        this.#pump()
      })
      this.#inFlight.add(commit)
    }
  }

  /** The oldest appends whose conversations no batch in flight holds; a skipped conversation stays skipped. */
  #takeBatch(): Pending[] {
    const batch: Pending[] = []
    const remaining: Pending[] = []
    const blocked = new Set(this.#busyConversations)
    for (const pending of this.#queue) {
      if (batch.length < MAX_BATCH && !blocked.has(pending.input.conversationId)) batch.push(pending)
      else {
        blocked.add(pending.input.conversationId)
        remaining.push(pending)
      }
    }
    this.#queue = remaining
    return batch
  }

  async #commit(batch: Pending[]): Promise<void> {
    const started = performance.now()
    let outcome: BatchOutcome
    try {
      outcome = await writeBatch(this.#ctx.db, batch)
    } catch (error) {
      this.#ctx.metrics.commitFailures.inc()
      this.#ctx.log.error({ err: error, batchSize: batch.length }, 'message batch commit failed')
      for (const p of batch) p.reject(error)
      return
    }
    this.#ctx.metrics.commitDuration.observe((performance.now() - started) / 1000)
    this.#ctx.metrics.commitBatchSize.observe(batch.length)
    const traces = tracingEnabled ? commitSpans(batch, outcome, performance.timeOrigin + started) : undefined
    let createdCount = 0
    for (const [tenantId, messages] of outcome.created) {
      createdCount += messages.length
      publishMessagesCommitted(this.#ctx.bus, traces ? { tenantId, messages, traces } : { tenantId, messages })
    }
    this.#ctx.metrics.messagesCommitted.inc(createdCount)
    batch.forEach((p, i) => {
      const result = outcome.results[i] as AppendResult | Problem
      if (result instanceof Problem) p.reject(result)
      else p.resolve(result)
    })
  }
}

/**
 * With tracing on, one span per appended message from the batch's start to its commit, in the trace of the request or
 * frame that sent it; returns each new message's span as a traceparent, so that its deliveries (on any node) join it.
 */
function commitSpans(batch: Pending[], outcome: BatchOutcome, startTime: number): Record<string, string> {
  const traces: Record<string, string> = {}
  batch.forEach((pending, i) => {
    const result = outcome.results[i]
    const span = tracer.startSpan(
      'message commit',
      { startTime, attributes: { 'strongroom.batch_size': batch.length } },
      pending.trace,
    )
    if (result instanceof Problem) span.setAttribute('strongroom.refused', result.kind)
    else {
      span.setAttribute('strongroom.created', result?.created ?? false)
      const traceparent = result?.created ? traceparentOf(span) : undefined
      if (result && traceparent) traces[result.message.id] = traceparent
    }
    span.end()
  })
  return traces
}

interface BatchOutcome {
  results: (AppendResult | Problem)[]
  created: Map<string, WireMessage[]>
}

const UNIQUE_VIOLATION = '23505'
const MAX_ATTEMPTS = 3

/**
 * Writes a batch in one SQL statement, so one round trip and one commit: it locks the batch's conversations in id
 * order (concurrent batches on other nodes wait instead of deadlocking), finds messages already stored under the same
 * idempotency keys, numbers the new ones from each conversation's last sequence number in arrival order, inserts
 * them and advances the conversations. The lock re-reads `last_seq` at its newest, so numbers never collide; a
 * duplicate committed by another node while this statement waited for the lock violates the unique key, and the
 * retry finds it.
 */
async function writeBatch(db: ServerContext['db'], batch: Pending[]): Promise<BatchOutcome> {
  const inputs = batch.map((p) => p.input)
  for (let attempt = 1; ; attempt++) {
    try {
      return await writeBatchOnce(db, inputs)
    } catch (error) {
      if ((error as { code?: string }).code !== UNIQUE_VIOLATION || attempt >= MAX_ATTEMPTS) throw error
    }
  }
}

interface BatchRow {
  ord: number
  outcome: 'new' | 'existing'
  seq: number | string
  id: string
  sender_kind: 'device' | 'staff' | 'archive' | 'channel' | 'system'
  sender_id: string
  client_message_id: string
  content_type: string
  ciphertext: Uint8Array | null
  created_at: Date | string
  expires_at: Date | string | null
}

async function writeBatchOnce(db: ServerContext['db'], batch: AppendInput[]): Promise<BatchOutcome> {
  // The same idempotency key twice in one batch: only the first is written; the others get its outcome.
  const firstOf = new Map<string, number>()
  const firstIndex = batch.map((i, index) => {
    const key = `${i.conversationId}\u0000${i.sender.kind}\u0000${i.sender.id}\u0000${i.clientMessageId}`
    const first = firstOf.get(key)
    if (first === undefined) firstOf.set(key, index)
    return first ?? index
  })
  const unique = batch
    .map((input, index) => ({ ...input, ord: index }))
    .filter((_, index) => firstIndex[index] === index)
  const ids = unique.map(() => newId('msg'))
  const now = new Date()
  const column = <T>(pick: (input: (typeof unique)[number]) => T) => unique.map(pick)

  const { rows } = await sql<BatchRow>`
    with input as materialized (
      select * from unnest(
        ${column((i) => i.ord)}::int[], ${column((i) => i.tenantId)}::text[],
        ${column((i) => i.conversationId)}::text[], ${column((i) => i.sender.kind)}::text[],
        ${column((i) => i.sender.id)}::text[], ${column((i) => i.clientMessageId)}::text[], ${ids}::text[],
        ${column((i) => i.contentType)}::text[], ${column((i) => i.ciphertext)}::bytea[],
        ${column((i) => i.expiresAt)}::timestamptz[]
      ) as i (ord, tenant_id, conversation_id, sender_kind, sender_id, client_message_id, id, content_type,
              ciphertext, expires_at)
    ),
    locked as materialized (
      select c.id, c.tenant_id, c.last_seq,
             coalesce(c.device_message_days, (select p.device_message_days from message_retention_policies p
                                              where p.tenant_id = c.tenant_id)) as retention_days
      from conversations c
      where c.id in (select conversation_id from input)
      order by c.id
      for update
    ),
    existing as materialized (
      select i.ord, m.* from input i
      join messages m on m.conversation_id = i.conversation_id and m.sender_kind = i.sender_kind
        and m.sender_id = i.sender_id and m.client_message_id = i.client_message_id and m.tenant_id = i.tenant_id
    ),
    fresh as materialized (
      select i.ord, i.tenant_id, i.conversation_id, i.sender_kind, i.sender_id, i.client_message_id, i.id,
             i.content_type, i.ciphertext,
             -- Without an expiry from the sender, the conversation's or else the tenant's retention for devices.
             coalesce(i.expires_at, ${now}::timestamptz + make_interval(days => l.retention_days)) as expires_at,
             l.last_seq + row_number() over (partition by i.conversation_id order by i.ord) as seq
      from input i
      join locked l on l.id = i.conversation_id and l.tenant_id = i.tenant_id
      where not exists (select 1 from existing e where e.ord = i.ord)
    ),
    inserted as (
      insert into messages (tenant_id, conversation_id, seq, id, sender_kind, sender_id, client_message_id,
                            content_type, ciphertext, created_at, expires_at)
      select tenant_id, conversation_id, seq, id, sender_kind, sender_id, client_message_id, content_type,
             ciphertext, ${now}::timestamptz, expires_at
      from fresh
    ),
    advanced as (
      -- A message from the customer (a device, or a public channel) reopens a pending or resolved conversation.
      update conversations c set last_seq = f.seq, last_message_at = ${now}::timestamptz,
        status = case when f.from_customer then 'open' else c.status end,
        status_changed_at = case when f.from_customer and c.status <> 'open' then ${now}::timestamptz
                                 else c.status_changed_at end
      from (select conversation_id, max(seq) as seq, bool_or(sender_kind in ('device', 'channel')) as from_customer
            from fresh group by conversation_id) f
      where c.id = f.conversation_id
    )
    select ord, 'new' as outcome, seq, id, sender_kind, sender_id, client_message_id, content_type,
           null::bytea as ciphertext, ${now}::timestamptz as created_at, expires_at
    from fresh
    union all
    select ord, 'existing', seq, id, sender_kind, sender_id, client_message_id, content_type, ciphertext,
           created_at, expires_at
    from existing
  `.execute(db)

  const byOrd = new Map(rows.map((row) => [row.ord, row]))
  const created = new Map<string, WireMessage[]>()
  const results = batch.map((input, index): AppendResult | Problem => {
    const row = byOrd.get(firstIndex[index] as number)
    if (!row) return new Problem('request/not-found', 'no such conversation')
    const message = toWireMessage({
      ...row,
      conversation_id: input.conversationId,
      ciphertext: row.ciphertext ?? input.ciphertext,
    })
    if (row.outcome === 'new' && firstIndex[index] === index) {
      const list = created.get(input.tenantId) ?? []
      list.push(message)
      created.set(input.tenantId, list)
      return { message, created: true }
    }
    const same = message.contentType === input.contentType && message.ciphertext === input.ciphertext.toString('base64')
    return same ? { message, created: false } : new Problem('conversations/idempotency-conflict')
  })
  return { results, created }
}

export function toWireMessage(row: {
  id: string
  conversation_id: string
  seq: number | string
  sender_kind: 'device' | 'staff' | 'archive' | 'channel' | 'system'
  sender_id: string
  client_message_id: string
  content_type: string
  ciphertext: Uint8Array
  created_at: Date | string
  expires_at: Date | string | null
}): WireMessage {
  return {
    id: row.id,
    conversationId: row.conversation_id,
    seq: Number(row.seq),
    sender: { kind: row.sender_kind, id: row.sender_id },
    clientMessageId: row.client_message_id,
    contentType: row.content_type,
    ciphertext: Buffer.from(row.ciphertext).toString('base64'),
    createdAt: new Date(row.created_at).toISOString(),
    expiresAt: row.expires_at === null ? null : new Date(row.expires_at).toISOString(),
  }
}

/**
 * Appends one message inside the caller's transaction, for a message that must commit together with another write
 * (an MLS commit and the epoch it advances). It bypasses the batcher but takes the same conversation lock, so
 * sequence numbers stay gapless. Call `announce` once the transaction has committed.
 */
export async function appendInTransaction(
  trx: ServerContext['db'],
  input: AppendInput,
): Promise<AppendResult & { announce: (ctx: Pick<ServerContext, 'bus'>) => void }> {
  const outcome = await writeBatchOnce(trx, [input])
  const result = outcome.results[0] as AppendResult | Problem
  if (result instanceof Problem) throw result
  return {
    ...result,
    announce: (ctx) => {
      if (result.created) publishMessagesCommitted(ctx.bus, { tenantId: input.tenantId, messages: [result.message] })
    },
  }
}
