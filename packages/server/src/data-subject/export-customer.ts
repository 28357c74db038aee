import { DATA_SUBJECT_EXPORT_TYPE, type DataSubjectExport } from '@strongroom/sdk/protocol'
import { customerArchiveRecords } from '../archive/customer-records.ts'
import { erasureOutlook } from '../archive/erasure.ts'
import { holdsOn } from '../archive/holds.ts'
import { retentionPolicy } from '../archive/retention.ts'
import { type Actor, recordAudit } from '../audit/events.ts'
import { auditEventsAbout } from '../audit/events-about.ts'
import { listPasskeys } from '../auth/passkeys.ts'
import { listSmsOtpCodes } from '../auth/sms-otp.ts'
import { listTotpFactors } from '../auth/totp.ts'
import { customerChannelIdentities } from '../channels/identities.ts'
import { openPublicMessage } from '../channels/public-messages.ts'
import { listCustomerConsents } from '../consent/consents.ts'
import { customerConversations } from '../conversations/conversations.ts'
import { fetchMessages } from '../conversations/messages.ts'
import { conversationRetentionDays, loadRetentionPolicy } from '../conversations/retention.ts'
import { MLS_CONTENT_TYPE } from '../e2e/groups.ts'
import { findCustomer } from '../identity/customers.ts'
import { listCustomerDevices } from '../identity/devices.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'archiveKek'>
type ExportedConversation = DataSubjectExport['conversations'][number]
type ExportedMessage = ExportedConversation['messages'][number]

const PAGE = 500

const NOTES = [
  'Messages of secure conversations are end-to-end encrypted (MLS, RFC 9420) on the devices: the server holds them ' +
    'only as ciphertext it cannot decrypt. Their text appears under archive.records where the bank keeps them as a ' +
    'member of the conversation.',
  'Secrets are never exported: access-token, enrolment-code and one-time-code hashes, TOTP secrets, and private ' +
    'keys (which stay on the devices and authenticators).',
  'Messages past their expiry for devices are no longer served and are deleted by the housekeeping job; the archive ' +
    'keeps its own copy under its own retention.',
]

/**
 * Gathers everything held about one customer into one machine-readable document for a data subject access request:
 * the customer record, devices in every state, passkeys and factors (public data only), channel addresses,
 * conversations with their messages (public-channel messages opened; end-to-end encrypted ones marked as ciphertext
 * the server cannot read), consents and receipts, the archive's records about them (decrypted with the archive's
 * keys: this needs a node with the archive key file), the audit events about them, and the retention and legal hold
 * facts that decide when they can be erased. Audited as `customer.export`.
 */
export async function exportCustomerData(
  ctx: Ctx,
  tenantId: string,
  customerId: string,
  actor: Actor,
): Promise<DataSubjectExport> {
  const customer = await findCustomer(ctx, tenantId, customerId)
  if (!customer) throw new Problem('request/not-found', 'no such customer')
  // The archive is read first: a node without its key file answers 503 before anything else is gathered.
  const archived = await customerArchiveRecords(ctx, tenantId, customerId)
  const devices = await listCustomerDevices(ctx, tenantId, customerId)
  const conversations = await customerConversations(ctx, tenantId, customerId)
  const conversationIds = conversations.map((c) => c.id)
  const retentionDays = await conversationRetentionDays(ctx, tenantId, conversationIds)
  const exportedConversations: ExportedConversation[] = []
  for (const conversation of conversations) {
    exportedConversations.push({
      id: conversation.id,
      createdAt: conversation.createdAt,
      assignedStaffId: conversation.assignedStaffId,
      members: conversation.members.map((m) => ({ kind: m.kind, id: m.id })),
      deviceMessageDays: retentionDays.get(conversation.id) ?? null,
      messages: await exportMessages(ctx, tenantId, conversation.id),
    })
  }
  const consents = await listCustomerConsents(ctx, tenantId, customerId)
  const outlook = await erasureOutlook(ctx.db, tenantId, customerId)
  const document: DataSubjectExport = {
    type: DATA_SUBJECT_EXPORT_TYPE,
    tenantId,
    exportedAt: new Date().toISOString(),
    exportedBy: `${actor.kind}:${actor.id ?? ''}`,
    customer: {
      id: customer.id,
      externalRef: customer.externalRef,
      displayName: customer.displayName,
      phoneNumber: customer.phoneNumber ?? null,
      createdAt: customer.createdAt,
    },
    devices,
    passkeys: (await listPasskeys(ctx, tenantId, { kind: 'customer', id: customerId })).map(
      ({ owner: _owner, ...passkey }) => passkey,
    ),
    factors: {
      totp: await listTotpFactors(ctx, tenantId, customerId),
      smsCodes: await listSmsOtpCodes(ctx, tenantId, customerId),
    },
    channelIdentities: await customerChannelIdentities(ctx, tenantId, customerId),
    conversations: exportedConversations,
    consents,
    archive: { records: archived },
    auditEvents: await auditEventsAbout(ctx.db, tenantId, {
      customerId,
      ids: [...devices.map((d) => d.id), ...conversationIds, ...consents.map((c) => c.id)],
    }),
    retention: {
      deviceMessageDays: (await loadRetentionPolicy(ctx, tenantId)).deviceMessageDays,
      archiveDays: await retentionPolicy(ctx.db, tenantId),
      legalHolds: await holdsOn(ctx.db, tenantId, { customerId, conversationIds }),
      erasure: {
        possibleNow: outlook.heldBy === null && outlook.retainedUntil === null,
        heldBy: outlook.heldBy,
        retainedUntil: outlook.retainedUntil,
      },
    },
    notes: NOTES,
  }
  await recordAudit(ctx.db, {
    tenantId,
    actor,
    action: 'customer.export',
    target: { kind: 'customer', id: customerId },
    outcome: 'success',
    details: {
      devices: devices.length,
      conversations: conversations.length,
      messages: exportedConversations.reduce((n, c) => n + c.messages.length, 0),
      archiveRecords: archived.length,
      auditEvents: document.auditEvents.length,
    },
  })
  return document
}

/** A conversation's messages as the server holds them, opened where the server can read them. */
async function exportMessages(ctx: Ctx, tenantId: string, conversationId: string): Promise<ExportedMessage[]> {
  const exported: ExportedMessage[] = []
  for (let afterSeq = 0; ; ) {
    const page = await fetchMessages(ctx, tenantId, conversationId, { afterSeq, limit: PAGE })
    for (const message of page) {
      const opened = await openPublicMessage(ctx, tenantId, message)
      exported.push({
        seq: message.seq,
        id: message.id,
        sender: message.sender,
        contentType: message.contentType,
        createdAt: message.createdAt,
        expiresAt: message.expiresAt,
        content: opened
          ? {
              readable: true,
              source: 'public-channel',
              direction: opened.direction,
              channel: opened.channel,
              text: opened.text,
              masked: opened.masked,
              imported: opened.imported,
            }
          : {
              readable: false,
              reason:
                message.contentType === MLS_CONTENT_TYPE
                  ? 'end-to-end encrypted (MLS): the server holds only ciphertext it cannot decrypt'
                  : 'encrypted by the sending app: the server holds only ciphertext it cannot decrypt',
              ciphertextBytes: Buffer.from(message.ciphertext, 'base64').length,
            },
      })
    }
    if (page.length < PAGE) return exported
    afterSeq = page.at(-1)?.seq ?? afterSeq
  }
}
