import { conversationCustomer } from '../conversations/conversations.ts'
import type { ServerContext } from '../platform/context.ts'
import { isDatabaseUnavailable } from '../platform/db/database.ts'
import type { ArchiveContext, ArchiveInput } from './append.ts'
import { archiveRecords } from './append.ts'
import type { ArchiveRecord, ArchiveSink } from './archive-member.ts'

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/** A message's bytes as the archive keeps them: text when they are UTF-8 (what the SDK sends), base64 otherwise. */
function messageBody(bytes: Uint8Array): { text: string } | { bytes: string } {
  try {
    return { text: strictUtf8.decode(bytes) }
  } catch {
    return { bytes: Buffer.from(bytes).toString('base64') }
  }
}

/** What the archive member read, as an archive record of the conversation's customer. */
export function toArchiveInput(record: ArchiveRecord, customerId: string | null): ArchiveInput {
  const common = {
    tenantId: record.tenantId,
    sourceRef: `mls:${record.conversationId}:${record.seq}`,
    conversationId: record.conversationId,
    conversationSeq: record.seq,
    customerId,
    occurredAt: new Date(),
  }
  if (record.kind === 'public-message') {
    const { envelope } = record
    return {
      ...common,
      sourceRef: `channel:${record.messageId}`,
      occurredAt: new Date(envelope.at),
      recordClass: 'public-message',
      content: {
        sender: record.sender,
        channel: envelope.channel,
        direction: envelope.direction,
        text: envelope.text,
        ...(envelope.masked ? { masked: envelope.masked } : {}),
      },
    }
  }
  if (record.kind === 'message') {
    // A copy its sender sent again is the same message: one record, under the original's seq, whichever the archive
    // read (the original when it could, else the copy), so the archive counts what the senders sent.
    const seq = record.copyOf ?? record.seq
    return {
      ...common,
      sourceRef: `mls:${record.conversationId}:${seq}`,
      conversationSeq: seq,
      occurredAt: record.sentAt,
      recordClass: 'secure-message',
      content: { sender: record.sender, ...messageBody(record.plaintext) },
    }
  }
  return {
    ...common,
    recordClass: 'membership-change',
    content: {
      epoch: record.epoch.toString(),
      added: record.added,
      removed: record.removed,
      ...(record.rejoined.length > 0 ? { rejoined: record.rejoined } : {}),
    },
  }
}

const MAX_BATCH = 500
const RETRY_MS = 1000

/**
 * The archive member's sink that writes to the archive store: every decrypted message and membership change becomes
 * a record sealed under the customer's archive key. Records are written in groups, as the message log commits: what
 * arrives while one insert is in flight goes in the next, one statement each, so the archive keeps up with the log
 * rather than paying a transaction per record. Each write resolves once its record has committed. An insert the
 * database was not there for is tried again (the records stay queued), so what the member read is never dropped
 * while it runs, and a replay after a crash writes nothing twice; a record that can never be stored is logged and set
 * aside (its write resolves), rather than holding up the archive.
 */
export function archiveStoreSink(ctx: ArchiveContext & Pick<ServerContext, 'log'>): ArchiveSink {
  const customers = new Map<string, string | null>()
  let queue: { input: ArchiveInput; resolve: () => void }[] = []
  let writing = false
  /**
   * Stores records in one statement. When the database is away, says so (the caller waits and tries again). Any other
   * failure is a record that cannot be stored, whatever the database does: each record is then tried alone, and one
   * that still fails is logged and set aside, so that it does not hold up every record read after it.
   */
  const store = async (inputs: ArchiveInput[]): Promise<'stored' | 'database-unavailable'> => {
    try {
      await archiveRecords(ctx, inputs)
      return 'stored'
    } catch (error) {
      if (isDatabaseUnavailable(error)) {
        ctx.log.error({ err: error, records: inputs.length }, 'archive insert failed; trying again')
        return 'database-unavailable'
      }
      if (inputs.length === 1) {
        ctx.log.error(
          { err: error, sourceRef: inputs[0]?.sourceRef },
          'an archive record cannot be stored: set aside so that the records after it are',
        )
        return 'stored'
      }
      for (const input of inputs) if ((await store([input])) === 'database-unavailable') return 'database-unavailable'
      return 'stored'
    }
  }
  const write = async () => {
    writing = true
    while (queue.length > 0) {
      const batch = queue.slice(0, MAX_BATCH)
      if ((await store(batch.map((q) => q.input))) === 'database-unavailable') {
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS))
        continue
      }
      queue = queue.slice(batch.length)
      for (const q of batch) q.resolve()
    }
    writing = false
  }
  return async (record) => {
    const key = `${record.tenantId}\0${record.conversationId}`
    let customerId = customers.get(key)
    if (customerId === undefined) {
      customerId = (await conversationCustomer(ctx, record.tenantId, record.conversationId)) ?? null
      if (customers.size >= 10_000) customers.clear()
      customers.set(key, customerId)
    }
    const input = toArchiveInput(record, customerId)
    await new Promise<void>((resolve) => {
      queue.push({ input, resolve })
      // Started on the next turn, so that what the member reads in this one goes in the same statement.
      if (!writing) {
        writing = true
        setImmediate(() => void write())
      }
    })
  }
}
