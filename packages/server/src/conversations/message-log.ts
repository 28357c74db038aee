import { type Insertable, type Selectable, sql } from 'kysely'
import type { ServerContext } from '../platform/context.ts'
import type { MessagesTable } from '../platform/db/schema.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'
import { publishMessagesCommitted, type WireMessage } from './bus-events.ts'

export interface AppendInput {
  tenantId: string
  conversationId: string
  sender: { kind: 'device' | 'staff'; id: string }
  clientMessageId: string
  contentType: string
  ciphertext: Buffer
  expiresAt: Date | null
}

export interface AppendResult {
  message: WireMessage
  /** False when the client message id had been used before and the earlier message is returned. */
  created: boolean
}

interface Pending {
  input: AppendInput
  resolve: (result: AppendResult) => void
  reject: (error: unknown) => void
}

const MAX_BATCH = 500

/**
 * The message log's writer. Appends that arrive while a commit is in flight (or within `commitDelayMs`) are written
 * together in one transaction, so throughput is not bound by one durable commit per message. Each append resolves
 * only after its batch has committed, and every message gets the next gapless sequence number of its conversation
 * inside that transaction. One batch at a time per node; across nodes, conversations are locked in id order so two
 * batches never deadlock.
 */
export class MessageLog {
  readonly #ctx: Pick<ServerContext, 'db' | 'bus' | 'metrics' | 'log' | 'config'>
  #queue: Pending[] = []
  #flushing: Promise<void> | undefined
  #timer: NodeJS.Timeout | undefined
  #closed = false

  constructor(ctx: Pick<ServerContext, 'db' | 'bus' | 'metrics' | 'log' | 'config'>) {
    this.#ctx = ctx
  }

  append(input: AppendInput): Promise<AppendResult> {
    if (this.#closed) return Promise.reject(new Problem('server/unavailable', 'the server is shutting down'))
    return new Promise((resolve, reject) => {
      this.#queue.push({ input, resolve, reject })
      this.#schedule()
    })
  }

  /** Stops taking appends and waits until everything queued has been committed. */
  async close(): Promise<void> {
    this.#closed = true
    while (this.#queue.length > 0 || this.#flushing) {
      if (this.#timer) {
        clearTimeout(this.#timer)
        this.#timer = undefined
      }
      if (!this.#flushing) this.#flushing = this.#flush()
      await this.#flushing
    }
  }

  #schedule(): void {
    if (this.#flushing || this.#timer) return
    const delay = this.#ctx.config.commitDelayMs
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#flushing = this.#flush()
    }, delay)
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, MAX_BATCH)
        await this.#commit(batch)
      }
    } finally {
      this.#flushing = undefined
    }
  }

  async #commit(batch: Pending[]): Promise<void> {
    const started = performance.now()
    let outcome: { results: (AppendResult | Problem)[]; created: Map<string, WireMessage[]> }
    try {
      outcome = await this.#ctx.db.transaction().execute((trx) => writeBatch(trx, batch))
    } catch (error) {
      this.#ctx.log.error({ err: error, batchSize: batch.length }, 'message batch commit failed')
      for (const p of batch) p.reject(error)
      return
    }
    this.#ctx.metrics.commitDuration.observe((performance.now() - started) / 1000)
    this.#ctx.metrics.commitBatchSize.observe(batch.length)
    let createdCount = 0
    for (const [tenantId, messages] of outcome.created) {
      createdCount += messages.length
      publishMessagesCommitted(this.#ctx.bus, { tenantId, messages })
    }
    this.#ctx.metrics.messagesCommitted.inc(createdCount)
    batch.forEach((p, i) => {
      const result = outcome.results[i] as AppendResult | Problem
      if (result instanceof Problem) p.reject(result)
      else p.resolve(result)
    })
  }
}

type Trx = ServerContext['db']

async function writeBatch(trx: Trx, batch: Pending[]) {
  const conversationIds = [...new Set(batch.map((p) => p.input.conversationId))].sort()
  // Lock in one fixed order: concurrent batches on other nodes wait instead of deadlocking.
  const conversations = await trx
    .selectFrom('conversations')
    .select(['id', 'tenant_id', 'last_seq'])
    .where('id', 'in', conversationIds)
    .orderBy('id')
    .forUpdate()
    .execute()
  const lastSeq = new Map(conversations.map((c) => [c.id, { tenantId: c.tenant_id, seq: Number(c.last_seq) }]))

  // One index lookup per appended message (a join on its idempotency key), however long the conversations are.
  const keys = sql.join(
    batch.map(
      ({ input: i }) =>
        sql`(${i.conversationId}::text, ${i.sender.kind}::text, ${i.sender.id}::text, ${i.clientMessageId}::text)`,
    ),
  )
  const { rows: existing } = await sql<Selectable<MessagesTable>>`
    select m.* from messages m
    join (values ${keys}) as k (conversation_id, sender_kind, sender_id, client_message_id)
      on m.conversation_id = k.conversation_id and m.sender_kind = k.sender_kind
     and m.sender_id = k.sender_id and m.client_message_id = k.client_message_id`.execute(trx)
  const key = (conversationId: string, kind: string, senderId: string, clientId: string) =>
    `${conversationId}\u0000${kind}\u0000${senderId}\u0000${clientId}`
  const known = new Map<string, WireMessage>()
  for (const row of existing) {
    known.set(key(row.conversation_id, row.sender_kind, row.sender_id, row.client_message_id), toWireMessage(row))
  }

  const now = new Date()
  const rows: Insertable<MessagesTable>[] = []
  const created = new Map<string, WireMessage[]>()
  const results: (AppendResult | Problem)[] = batch.map(({ input }) => {
    const conversation = lastSeq.get(input.conversationId)
    if (!conversation || conversation.tenantId !== input.tenantId) {
      return new Problem('request/not-found', 'no such conversation')
    }
    const k = key(input.conversationId, input.sender.kind, input.sender.id, input.clientMessageId)
    const previous = known.get(k)
    if (previous) {
      const same =
        previous.contentType === input.contentType && previous.ciphertext === input.ciphertext.toString('base64')
      return same ? { message: previous, created: false } : new Problem('conversations/idempotency-conflict')
    }
    conversation.seq += 1
    const message: WireMessage = {
      id: newId('msg'),
      conversationId: input.conversationId,
      seq: conversation.seq,
      sender: input.sender,
      clientMessageId: input.clientMessageId,
      contentType: input.contentType,
      ciphertext: input.ciphertext.toString('base64'),
      createdAt: now.toISOString(),
      expiresAt: input.expiresAt?.toISOString() ?? null,
    }
    known.set(k, message)
    rows.push({
      tenant_id: input.tenantId,
      conversation_id: input.conversationId,
      seq: message.seq,
      id: message.id,
      sender_kind: input.sender.kind,
      sender_id: input.sender.id,
      client_message_id: input.clientMessageId,
      content_type: input.contentType,
      ciphertext: input.ciphertext,
      created_at: now,
      expires_at: input.expiresAt,
    })
    const list = created.get(input.tenantId) ?? []
    list.push(message)
    created.set(input.tenantId, list)
    return { message, created: true }
  })

  if (rows.length > 0) {
    // Column arrays and unnest: eleven parameters whatever the batch size, so neither the query builder nor the
    // server plans hundreds of placeholders.
    const column = <K extends keyof Insertable<MessagesTable>>(name: K) => rows.map((row) => row[name])
    await sql`
      insert into messages (tenant_id, conversation_id, seq, id, sender_kind, sender_id, client_message_id,
                            content_type, ciphertext, created_at, expires_at)
      select * from unnest(${column('tenant_id')}::text[], ${column('conversation_id')}::text[],
        ${column('seq')}::bigint[], ${column('id')}::text[], ${column('sender_kind')}::text[],
        ${column('sender_id')}::text[], ${column('client_message_id')}::text[], ${column('content_type')}::text[],
        ${column('ciphertext')}::bytea[], ${column('created_at')}::timestamptz[], ${column('expires_at')}::timestamptz[])
    `.execute(trx)
    const advanced = conversations.filter((c) => lastSeq.get(c.id)?.seq !== Number(c.last_seq))
    await sql`
      update conversations set last_seq = v.seq
      from unnest(${advanced.map((c) => c.id)}::text[], ${advanced.map((c) => lastSeq.get(c.id)?.seq)}::bigint[])
        as v (id, seq)
      where conversations.id = v.id`.execute(trx)
  }
  return { results, created }
}

export function toWireMessage(row: {
  id: string
  conversation_id: string
  seq: number | string
  sender_kind: 'device' | 'staff'
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
