import { sql } from 'kysely'
import { openEnvelope, PUBLIC_MESSAGE_TYPE } from '../channels/envelope.ts'
import { getConsent } from '../consent/consents.ts'
import { conversationCustomer } from '../conversations/conversations.ts'
import { fetchMessages } from '../conversations/messages.ts'
import { deviceCustomerId } from '../identity/devices.ts'
import type { ServerContext } from '../platform/context.ts'
import { listTenants } from '../tenancy/tenants.ts'
import { type ArchiveInput, archiveRecords } from './append.ts'

/**
 * The evidence the archive keeps beside the conversations, as records of their own: every consent asked, approved or
 * declined (an approval with its receipt, which carries the device's own signature), every move to the secure
 * channel, and every step of a device's life. The audit log already holds each of these as a chained event; the
 * archive takes them from there in chain order, so nothing is archived that was not audited, and a crash only
 * replays (one record per audit event: the source reference is the event's place in the tenant's audit chain).
 */
const ARCHIVED_ACTIONS: Record<string, EvidenceClass> = {
  'consent.request': 'consent',
  'consent.approve': 'consent',
  'consent.decline': 'consent',
  'consent.sms-reply': 'consent',
  'channels.pivot.invite': 'pivot',
  'channels.pivot.redeem': 'pivot',
  'channels.pivot.step-up': 'pivot',
  'device.enrol': 'device-event',
  'device.suspend': 'device-event',
  'device.resume': 'device-event',
  'device.revoke': 'device-event',
  'device.wipe.confirmed': 'device-event',
  // DLP masking a public message after the fact (a card number typed over two): a redaction record superseding it.
  'channels.dlp.masked': 'redaction',
}

export type EvidenceClass = 'consent' | 'pivot' | 'device-event' | 'redaction'

const SOURCE_PREFIX = 'audit:'
const PAGE = 200

type Ctx = Pick<ServerContext, 'db' | 'keyring'>

/** The audit chain position up to which the tenant's evidence is archived (0 for none). */
export async function archivedEvidenceThrough(ctx: Pick<ServerContext, 'db'>, tenantId: string): Promise<number> {
  const { rows } = await sql<{ seq: string | null }>`
    select max(substring(source_ref from ${SOURCE_PREFIX.length + 1})::bigint)::text as seq from archive_records
    where tenant_id = ${tenantId} and record_class in ('consent', 'pivot', 'device-event', 'redaction')`.execute(ctx.db)
  return Number(rows[0]?.seq ?? 0)
}

/**
 * The next page of the tenant's evidence after an audit chain position, as archive inputs, and the position it read
 * up to. Only events already linked into the audit chain are read: their order is final.
 */
export async function readEvidence(
  ctx: Ctx,
  tenantId: string,
  afterSeq: number,
): Promise<{ inputs: ArchiveInput[]; through: number }> {
  const events = await ctx.db
    .selectFrom('audit_events')
    .select(['seq', 'occurred_at', 'actor_kind', 'actor_id', 'action', 'target_kind', 'target_id', 'outcome'])
    .select(['reason', 'details'])
    .where('tenant_id', '=', tenantId)
    .where('seq', '>', String(afterSeq))
    .where('action', 'in', Object.keys(ARCHIVED_ACTIONS))
    .where('outcome', '=', 'success')
    .orderBy('seq')
    .limit(PAGE)
    .execute()
  const inputs: ArchiveInput[] = []
  for (const event of events) {
    const recordClass = ARCHIVED_ACTIONS[event.action] as EvidenceClass
    const details = JSON.parse(event.details) as { remaskedSeqs?: string[] }
    // Only masking after the fact changes what the archive already kept.
    if (recordClass === 'redaction' && !details.remaskedSeqs?.length) continue
    const subject =
      recordClass === 'redaction'
        ? await redactionOf(ctx, tenantId, event.target_id as string, (details.remaskedSeqs ?? []).map(Number))
        : await subjectOf(ctx, tenantId, recordClass, event.target_id)
    inputs.push({
      tenantId,
      recordClass,
      sourceRef: `${SOURCE_PREFIX}${event.seq}`,
      conversationId: subject.conversationId,
      conversationSeq: null,
      customerId: subject.customerId,
      occurredAt: new Date(event.occurred_at),
      content: {
        action: event.action,
        actor: { kind: event.actor_kind, id: event.actor_id },
        target: { kind: event.target_kind, id: event.target_id },
        ...(event.reason ? { reason: event.reason } : {}),
        details,
        ...subject.content,
      },
    })
  }
  const last = events.at(-1)
  return { inputs, through: last ? Number(last.seq) : afterSeq }
}

/**
 * Whose record it is, and for a consent the terms, its one-time challenge (part of what the device signed) and, once
 * approved, the receipt with the device's signature, as they stand when archived.
 */
async function subjectOf(
  ctx: Ctx,
  tenantId: string,
  recordClass: EvidenceClass,
  targetId: string | null,
): Promise<{ customerId: string | null; conversationId: string | null; content: Record<string, unknown> }> {
  if (targetId === null) return { customerId: null, conversationId: null, content: {} }
  if (recordClass === 'consent') {
    const consent = await getConsent(ctx, tenantId, targetId).catch(() => undefined)
    if (!consent) return { customerId: null, conversationId: null, content: {} }
    return { customerId: consent.customerId, conversationId: null, content: { consent } }
  }
  if (recordClass === 'pivot') {
    const customerId = (await conversationCustomer(ctx, tenantId, targetId)) ?? null
    return { customerId, conversationId: targetId, content: {} }
  }
  return { customerId: (await deviceCustomerId(ctx, tenantId, targetId)) ?? null, conversationId: null, content: {} }
}

/**
 * A redaction's content: each public message masked after the fact, as the log now holds it (the masking and its
 * audit event committed together, so it is masked by the time the event is read), and the archive record it
 * supersedes (`channel:<message id>`, as the archive member keyed it).
 */
async function redactionOf(ctx: Ctx, tenantId: string, conversationId: string, seqs: number[]) {
  const supersedes: Record<string, unknown>[] = []
  for (const seq of seqs) {
    const [message] = await fetchMessages(ctx, tenantId, conversationId, { afterSeq: seq - 1, untilSeq: seq, limit: 1 })
    if (!message || message.contentType !== PUBLIC_MESSAGE_TYPE) continue
    const { sender, clientMessageId } = message
    const sealed = Buffer.from(message.ciphertext, 'base64')
    const envelope = await openEnvelope(ctx, tenantId, { conversationId, sender, clientMessageId }, sealed)
    supersedes.push({
      sourceRef: `channel:${message.id}`,
      conversationSeq: seq,
      text: envelope.text,
      ...(envelope.masked ? { masked: envelope.masked } : {}),
    })
  }
  const customerId = (await conversationCustomer(ctx, tenantId, conversationId)) ?? null
  return { customerId, conversationId, content: { supersedes } }
}

const FEED_MS = 1000

/**
 * Runs on the archive node: every second, each tenant's new evidence goes from the audit chain into the archive.
 * `flush` reads up to what the audit chain holds now (tests, and a clean stop).
 */
export function startEvidenceArchive(ctx: ServerContext): { flush(): Promise<void>; stop(): Promise<void> } {
  const through = new Map<string, number>()
  let running: Promise<void> = Promise.resolve()
  const pass = async () => {
    for (const tenant of await listTenants(ctx)) {
      let after = through.get(tenant.id) ?? (await archivedEvidenceThrough(ctx, tenant.id))
      for (;;) {
        const page = await readEvidence(ctx, tenant.id, after)
        await archiveRecords(ctx, page.inputs)
        after = page.through
        through.set(tenant.id, after)
        if (page.inputs.length < PAGE) break
      }
    }
  }
  const flush = () => {
    running = running.then(pass).catch((error) => ctx.log.error({ err: error }, 'archiving evidence failed'))
    return running
  }
  const timer = setInterval(() => void flush(), FEED_MS)
  timer.unref()
  return {
    flush,
    stop: async () => {
      clearInterval(timer)
      await running
    },
  }
}
