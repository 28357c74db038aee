import { conversationCustomer } from '../conversations/conversations.ts'
import type { ArchiveContext, ArchiveInput } from './append.ts'
import { archiveRecord } from './append.ts'
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

/**
 * The archive member's sink that writes to the archive store: every decrypted message and membership change becomes
 * a record sealed under the customer's archive key. A replay after a crash writes nothing twice.
 */
export function archiveStoreSink(ctx: ArchiveContext): ArchiveSink {
  const customers = new Map<string, string | null>()
  return async (record) => {
    const key = `${record.tenantId}\0${record.conversationId}`
    let customerId = customers.get(key)
    if (customerId === undefined) {
      customerId = (await conversationCustomer(ctx, record.tenantId, record.conversationId)) ?? null
      if (customers.size >= 10_000) customers.clear()
      customers.set(key, customerId)
    }
    await archiveRecord(ctx, toArchiveInput(record, customerId))
  }
}
