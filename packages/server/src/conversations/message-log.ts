import { type Context, context } from '@opentelemetry/api'
import { type RawBuilder, sql } from 'kysely'
import type { ServerContext } from '../platform/context.ts'
import { PREPARED } from '../platform/db/database.ts'
import { Problem } from '../platform/http/problems.ts'
import { newIds } from '../platform/ids.ts'
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
 * What a message says of itself that admission checks, read without the database: for an MLS message its group and
 * epoch, or, when its framing cannot be admitted whatever the group's state, the refusal it gets once the conversation
 * is known to have a group.
 */
export type MessageClaim =
  | { kind: 'plain' }
  | { kind: 'mls'; groupId: Uint8Array; epoch: bigint }
  | { kind: 'malformed'; refusal: Problem }

/**
 * The rule every appended message passes (the MLS delivery service's: framing, group and epoch), in two halves so
 * that it costs no database round trip of its own. `claim` reads the message alone, as it arrives. `refusals` is SQL
 * that the batch statement runs once it holds the locks of the batch's conversations; whatever changes what it reads
 * (a commit moving the epoch, a group registered) takes the conversation's lock first (`lockConversationLog`), so that
 * nothing comes between the check and the insert, on this node or another.
 */
export interface MessageAdmission {
  claim(input: AppendInput): MessageClaim
  /**
   * A query over the statement's `input` (ord, tenant_id, conversation_id, claim text: 'plain', 'mls' or 'malformed',
   * claimed_group bytea, claimed_epoch bigint) and `locked` (the batch's conversations, locked: id, tenant_id,
   * encryption_required) that selects (ord, refusal, current_epoch) for every message, refusal null for one admitted.
   * A row of another table it reads `for share`: that waits for a writer still holding it and reads the row as that
   * writer left it, where a plain read would see it as it was when the statement began, before its locks.
   */
  refusals: RawBuilder<unknown>
  /** The problem of a message `refusals` refused: `refusal` is what the query gave, `currentEpoch` its epoch. */
  problemOf(claim: MessageClaim, refusal: string, currentEpoch: number | null): Problem
}

export interface AppendResult {
  message: WireMessage
  /** False when the client message id had been used before and the earlier message is returned. */
  created: boolean
}

interface Pending {
  input: AppendInput
  claim: MessageClaim
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
  readonly #admission: MessageAdmission

  constructor(ctx: Pick<ServerContext, 'db' | 'bus' | 'metrics' | 'log' | 'config'>, admission: MessageAdmission) {
    this.#ctx = ctx
    this.#admission = admission
  }

  /**
   * Queues a message for the next batch, in arrival order. A message the admission's claim already refuses still
   * goes to the batch: whether it is refused, and with what, depends on the conversation's state there.
   */
  append(input: AppendInput): Promise<AppendResult> {
    if (this.#closed) return Promise.reject(new Problem('server/unavailable', 'the server is shutting down'))
    const claim = this.#admission.claim(input)
    return new Promise((resolve, reject) => {
      this.#queue.push(
        tracingEnabled ? { input, claim, resolve, reject, trace: context.active() } : { input, claim, resolve, reject },
      )
      if (!this.#timer && this.#inFlight.size < WRITERS) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined
          this.#pump()
        }, this.#ctx.config.commitDelayMs)
      }
    })
  }

  /**
   * Holds what is relayed and never appended (a signal: a typing or read indicator) to the rule an append passes: in
   * a secure conversation, an application message of its group at its current epoch. One read; nothing is written.
   */
  async check(input: AppendInput): Promise<void> {
    const claim = this.#admission.claim(input)
    const mls = claim.kind === 'mls' ? claim : undefined
    const { rows } = await sql<{ refusal: string; current_epoch: string | null }>`
      with input as (
        select 0 as ord, ${input.tenantId}::text as tenant_id, ${input.conversationId}::text as conversation_id,
               ${claim.kind}::text as claim, ${mls?.groupId ?? null}::bytea as claimed_group,
               ${mls?.epoch.toString() ?? null}::bigint as claimed_epoch
      ),
      locked as (
        select c.id, c.tenant_id, c.encryption_required from conversations c
        where c.id = ${input.conversationId} and c.tenant_id = ${input.tenantId}
      )
      ${this.#admission.refusals}
    `.execute(this.#ctx.db)
    const refused = rows[0]
    if (refused === undefined) return
    const currentEpoch = refused.current_epoch === null ? null : Number(refused.current_epoch)
    throw this.#admission.problemOf(claim, refused.refusal, currentEpoch)
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
      outcome = await writeBatch(this.#ctx.db, batch, this.#admission)
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
 * idempotency keys, has the admission refuse what it refuses, numbers the rest from each conversation's last sequence
 * number in arrival order, inserts them and advances the conversations. The lock re-reads `last_seq` at its newest,
 * so numbers never collide; a duplicate committed by another node while this statement waited for the lock violates
 * the unique key, and the retry finds it. A message already stored is answered as stored, refused or not now (its
 * sender's retry of a message whose acknowledgement it lost).
 */
async function writeBatch(
  db: ServerContext['db'],
  batch: Pending[],
  admission: MessageAdmission,
): Promise<BatchOutcome> {
  const admitted = { admission, claims: batch.map((p) => p.claim) }
  const inputs = batch.map((p) => p.input)
  for (let attempt = 1; ; attempt++) {
    try {
      return await writeBatchOnce(db, inputs, admitted)
    } catch (error) {
      if ((error as { code?: string }).code !== UNIQUE_VIOLATION || attempt >= MAX_ATTEMPTS) throw error
    }
  }
}

interface BatchRow {
  ord: number
  outcome: 'new' | 'existing' | 'refused'
  seq: number | string
  id: string
  sender_kind: 'device' | 'staff' | 'archive' | 'channel' | 'system'
  sender_id: string
  client_message_id: string
  content_type: string
  ciphertext: Uint8Array | null
  created_at: Date | string
  expires_at: Date | string | null
  refusal: string | null
  current_epoch: number | string | null
}

/** Refuses nothing: for a message its caller has already held to its own rule (a commit, an imported history). */
const ADMIT_ALL = sql`select null::int as ord, null::text as refusal, null::bigint as current_epoch where false`

async function writeBatchOnce(
  db: ServerContext['db'],
  batch: AppendInput[],
  admitted?: { admission: MessageAdmission; claims: MessageClaim[] },
): Promise<BatchOutcome> {
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
  const ids = newIds('msg', unique.length)
  // Each ciphertext is encoded once: sent as base64 (a third shorter than bytea's hex) and kept for its wire message.
  const base64 = batch.map((i) => i.ciphertext.toString('base64'))
  const now = new Date()
  const column = <T>(pick: (input: (typeof unique)[number]) => T) => unique.map(pick)
  const claims = unique.map((i): MessageClaim => admitted?.claims[i.ord] ?? { kind: 'plain' })
  const mls = (claim: MessageClaim) => (claim.kind === 'mls' ? claim : undefined)

  const { rows } = await sql<BatchRow>`${sql.raw(PREPARED)}
    with input as materialized (
      select * from unnest(
        ${column((i) => i.ord)}::int[], ${column((i) => i.tenantId)}::text[],
        ${column((i) => i.conversationId)}::text[], ${column((i) => i.sender.kind)}::text[],
        ${column((i) => i.sender.id)}::text[], ${column((i) => i.clientMessageId)}::text[], ${ids}::text[],
        ${column((i) => i.contentType)}::text[], ${column((i) => base64[i.ord])}::text[],
        ${column((i) => i.expiresAt)}::timestamptz[], ${claims.map((c) => c.kind)}::text[],
        ${claims.map((c) => mls(c)?.groupId ?? null)}::bytea[],
        ${claims.map((c) => mls(c)?.epoch.toString() ?? null)}::bigint[]
      ) as i (ord, tenant_id, conversation_id, sender_kind, sender_id, client_message_id, id, content_type,
              ciphertext, expires_at, claim, claimed_group, claimed_epoch)
    ),
    locked as materialized (
      select c.id, c.tenant_id, c.last_seq, c.encryption_required,
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
    -- After the locks: the admission reads the state of conversations no commit can change until this one commits.
    refused as materialized (${admitted?.admission.refusals ?? ADMIT_ALL}),
    fresh as materialized (
      select i.ord, i.tenant_id, i.conversation_id, i.sender_kind, i.sender_id, i.client_message_id, i.id,
             i.content_type, decode(i.ciphertext, 'base64') as ciphertext,
             -- Without an expiry from the sender, the conversation's or else the tenant's retention for devices.
             coalesce(i.expires_at, ${now}::timestamptz + make_interval(days => l.retention_days)) as expires_at,
             l.last_seq + row_number() over (partition by i.conversation_id order by i.ord) as seq
      from input i
      join locked l on l.id = i.conversation_id and l.tenant_id = i.tenant_id
      where not exists (select 1 from existing e where e.ord = i.ord)
        and not exists (select 1 from refused r where r.ord = i.ord)
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
           null::bytea as ciphertext, ${now}::timestamptz as created_at, expires_at, null::text as refusal,
           null::bigint as current_epoch
    from fresh
    union all
    select ord, 'existing', seq, id, sender_kind, sender_id, client_message_id, content_type, ciphertext,
           created_at, expires_at, null, null
    from existing
    union all
    select ord, 'refused', null, null, null, null, null, null, null, null, null, refusal, current_epoch
    from refused r
    where not exists (select 1 from existing e where e.ord = r.ord)
  `.execute(db)

  const byOrd = new Map(rows.map((row) => [row.ord, row]))
  const created = new Map<string, WireMessage[]>()
  const results = batch.map((input, index): AppendResult | Problem => {
    const first = firstIndex[index] as number
    const row = byOrd.get(first)
    if (!row) return new Problem('request/not-found', 'no such conversation')
    if (row.outcome === 'refused' && admitted) {
      const currentEpoch = row.current_epoch === null ? null : Number(row.current_epoch)
      return admitted.admission.problemOf(admitted.claims[first] as MessageClaim, row.refusal as string, currentEpoch)
    }
    const message = toWireMessage({
      ...row,
      conversation_id: input.conversationId,
      ciphertext: row.ciphertext ?? (base64[first] as string),
    })
    if (row.outcome === 'new' && firstIndex[index] === index) {
      const list = created.get(input.tenantId) ?? []
      list.push(message)
      created.set(input.tenantId, list)
      return { message, created: true }
    }
    const same = message.contentType === input.contentType && message.ciphertext === base64[index]
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
  /** The bytes, or already their base64. */
  ciphertext: Uint8Array | string
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
    ciphertext: typeof row.ciphertext === 'string' ? row.ciphertext : Buffer.from(row.ciphertext).toString('base64'),
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

/**
 * Takes a conversation's log lock (its row, as a batch statement locks it) in the caller's transaction, for a write
 * that changes what admission reads: an MLS commit moving the epoch, a group made for the conversation. Taken before
 * that write, it orders the write against the batches: a batch that holds the lock commits first, under the state it
 * read; a batch that comes later waits, then reads what this transaction left. With `requireEncryption` (a group is
 * being made) the conversation takes only encrypted messages from then on: a batch that waited sees that flag, where
 * the group's new row is too recent for its snapshot.
 */
export async function lockConversationLog(
  trx: ServerContext['db'],
  tenantId: string,
  conversationId: string,
  change: { requireEncryption: boolean } = { requireEncryption: false },
): Promise<void> {
  if (change.requireEncryption) {
    await trx
      .updateTable('conversations')
      .set({ encryption_required: true })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', conversationId)
      .execute()
    return
  }
  await trx
    .selectFrom('conversations')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('id', '=', conversationId)
    .forUpdate()
    .execute()
}
