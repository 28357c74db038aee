import type { ArchiveSearch, CaseScope } from '../archive-protocol.ts'
import type {
  CustomerPivotInvitation,
  OutreachMessage,
  PivotInvitation,
  PublicMessageText,
} from '../channel-protocol.ts'
import type { PayeeBlock } from '../consent.ts'
import { randomId } from '../encoding.ts'
import type { StaffMember } from '../identity-protocol.ts'
import type { PasskeyRegistrationCredential } from '../passkeys.ts'
import type { Assignment, NewConversation, NewMember, StaffPresence } from '../protocol.ts'
import type {
  ConversationChannel,
  CustomerChannel,
  PivotLink,
  ReportOutcome,
  SentPublicMessage,
  SuspiciousReport,
} from '../public-channels.ts'
import type { WireBody } from '../wire-contract.ts'
import type { ClientClass } from './client-core.ts'
import { passkeyRegistrationOptionsAt, registerPasskeyAt } from './passkey-registration.ts'

/** `reassign` keeps the previous assignee a member; `transfer` takes them out of the conversation. */
export type AssignmentMode = Assignment['mode']

/** A public-channel text as a method takes it: without `clientMessageId`, a random one is sent. */
type WithClientMessageId<T extends { clientMessageId: string }> = Omit<T, 'clientMessageId'> & {
  clientMessageId?: string
}

/** How many conversations one channel lookup names (the server's limit). */
const CHANNEL_LOOKUP_BATCH = 100

/**
 * What only the bank's staff call: the scopes a backend is never given (conversations, the archive, the public
 * channels, the suspicious-report queue) and the routes for a staff member's own account.
 */
export function withStaffCalls<Base extends ClientClass>(base: Base) {
  return class StaffCalls extends base {
    createConversation(input: NewConversation) {
      return this.call('POST /v1/conversations', { body: input })
    }

    addMember(conversationId: string, member: NewMember) {
      return this.call('POST /v1/conversations/:conversationId/members', { params: { conversationId }, body: member })
    }

    /**
     * A supervisor (`conversations:assign`): gives the conversation to another agent, who joins it. `transfer` also
     * takes the previous assignee out of it.
     */
    assignConversation(conversationId: string, assignment: Assignment) {
      return this.call('PUT /v1/conversations/:conversationId/assignment', {
        params: { conversationId },
        body: assignment,
      })
    }

    /** A supervisor: the tenant's staff members, to pick whom to give a conversation to. */
    async listStaff(): Promise<StaffMember[]> {
      return (await this.call('GET /v1/staff')).staff
    }

    /** Removes every factor of a customer who lost them (audited with the reason; their devices are told). */
    resetFactors(customerId: string, reason: string) {
      return this.call('POST /v1/customers/:customerId/factors/reset', { params: { customerId }, body: { reason } })
    }

    /** The options for `navigator.credentials.create`, to register the staff member's own passkey. */
    passkeyRegistrationOptions() {
      return passkeyRegistrationOptionsAt(this, '/v1/staff/passkey')
    }

    /** Sends `credential.toJSON()` from `navigator.credentials.create`; the server keeps the public key. */
    registerPasskey(credential: PasskeyRegistrationCredential) {
      return registerPasskeyAt(this, '/v1/staff/passkey', credential)
    }

    // ── Staff presence ──

    /** Supervisors (`conversations:assign`): whether each active staff member is available, away or offline. */
    async listStaffPresence(): Promise<StaffPresence[]> {
      return (await this.call('GET /v1/staff/presence')).staff
    }

    /** Says this staff member is away (or back); supervisors see it live. Audited. */
    async setAway(away: boolean): Promise<void> {
      await this.call('PUT /v1/staff/me/presence', { body: { away } })
    }

    /** Compliance (`archive:read`): searches the archive; audited. Follow `next` (as `after`) for more. */
    searchArchive(search: ArchiveSearch) {
      const { from, to, ...rest } = search
      return this.call('GET /v1/archive/records', {
        query: { ...rest, from: from?.toISOString(), to: to?.toISOString() },
      })
    }

    /** Compliance: verifies the archive chain now (links, hashes, content, signed checkpoints); audited. */
    verifyArchive() {
      return this.call('GET /v1/archive/verification')
    }

    /**
     * Compliance: exports a case as a signed bundle (JSON lines, the last the signed manifest), reporting the record
     * lines received as they stream in. Throws if the bundle arrives cut short (no manifest line).
     *
     * @example
     * const bundle = await client.exportArchiveCase({ customerId }, { onProgress: (done, total) => show(done, total) })
     */
    async exportArchiveCase(
      scope: CaseScope,
      options: { onProgress?: (records: number, total: number) => void } = {},
    ): Promise<string> {
      const { from, to, ...rest } = scope
      const body: WireBody<'POST /v1/archive/exports'> = { ...rest, from: from?.toISOString(), to: to?.toISOString() }
      const response = await this.transport.exchange('POST', '/v1/archive/exports', body)
      const total = Number(response.headers.get('strongroom-export-records') ?? 0)
      options.onProgress?.(0, total)
      const decoder = new TextDecoder()
      let text = ''
      let lines = 0
      const reader = (response.body as ReadableStream<Uint8Array>).getReader()
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        const part = decoder.decode(chunk.value, { stream: true })
        text += part
        lines += part.split('\n').length - 1
        // The last line is the manifest, not a record.
        options.onProgress?.(Math.min(lines, total), total)
      }
      text += decoder.decode()
      const lastLine = text.slice(text.lastIndexOf('\n', text.length - 2) + 1)
      if (!text.endsWith('\n') || !lastLine.startsWith('{"manifest":')) {
        throw new Error('the export was cut short: no signed manifest')
      }
      return text
    }

    /**
     * Sends a text to the customer on the conversation's public channel. Card or account data is refused
     * (`channels/sensitive-data`: move the customer to the secure channel instead); so is free text on WhatsApp more
     * than 24 hours after the customer last wrote (`channels/outside-service-window`). The same `clientMessageId`
     * never sends twice.
     */
    sendPublicMessage(conversationId: string, message: WithClientMessageId<PublicMessageText>) {
      return this.call('POST /v1/conversations/:conversationId/public-messages', {
        params: { conversationId },
        body: { clientMessageId: message.clientMessageId ?? randomId(), text: message.text },
      })
    }

    /**
     * Invites the customer to the secure channel. The server sends a single-use link, valid for minutes, on the
     * conversation's public channel (a button on WhatsApp and Messenger); follow it with `listPivotLinks` (or the
     * stream's `onUpdate`). While a link sent earlier (by an agent or automatically) is live, that one is returned and
     * nothing is sent (`message` absent); `replace: true` sends a new one, which replaces it.
     */
    invitePivot(
      conversationId: string,
      options: PivotInvitation = {},
    ): Promise<{ link: PivotLink; message?: SentPublicMessage }> {
      return this.call('POST /v1/conversations/:conversationId/pivot', { params: { conversationId }, body: options })
    }

    /** The secure-channel links sent in a conversation, newest first: sent, opened, completed or expired. */
    async listPivotLinks(conversationId: string): Promise<PivotLink[]> {
      return (await this.call('GET /v1/conversations/:conversationId/pivot-links', { params: { conversationId } }))
        .links
    }

    /**
     * Which of these conversations belong to a public channel, as the conversation on the channel or as the secure
     * conversation a pivot moved it to. Conversations on no public channel, and those the caller cannot see, are
     * left out.
     */
    async conversationChannels(conversationIds: readonly string[]): Promise<ConversationChannel[]> {
      const found: ConversationChannel[] = []
      for (let i = 0; i < conversationIds.length; i += CHANNEL_LOOKUP_BATCH) {
        const ids = conversationIds.slice(i, i + CHANNEL_LOOKUP_BATCH).join(',')
        found.push(...(await this.call('GET /v1/channels/conversations', { query: { ids } })).conversations)
      }
      return found
    }

    /** Customers' reports of suspicious messages, newest first: the open ones (the queue) or the resolved ones. */
    async listSuspiciousReports(status: SuspiciousReport['status'] = 'open'): Promise<SuspiciousReport[]> {
      return (await this.call('GET /v1/suspicious-reports', { query: { status } })).reports
    }

    /** Closes a report with what was found (`channels/report-resolved` if it already was). */
    resolveSuspiciousReport(reportId: string, outcome: ReportOutcome): Promise<SuspiciousReport> {
      return this.call('POST /v1/suspicious-reports/:reportId/resolve', { params: { reportId }, body: { outcome } })
    }

    // ── Payee blocks ("This wasn't me"): seen and lifted by supervisors and administrators (consents:unblock) ───────

    /** The payees this customer blocked by declining a request as "This wasn't me", lifted ones included. */
    async listPayeeBlocks(customerId: string): Promise<PayeeBlock[]> {
      return (await this.call('GET /v1/customers/:customerId/payee-blocks', { params: { customerId } })).blocks
    }

    /**
     * Lifts the block a "This wasn't me" decline put on its payee for that customer; the reason goes to the audit log.
     * Requests to that payee are accepted again; the fraud report stays on record.
     */
    liftPayeeBlock(consentId: string, reason: string): Promise<PayeeBlock> {
      return this.call('POST /v1/consents/:consentId/payee-block/lift', { params: { consentId }, body: { reason } })
    }

    // ── Writing to a customer first (proactive outreach): a new conversation, or a secure link ────────────────────

    /**
     * The bank's public channels as ways to write to this customer first: on each, the conversation they already
     * have there (if the caller may see it), the messaging window the next message falls in (on WhatsApp after 24
     * hours, `template`: the bank's approved templates only), or why the bank cannot write there (`unreachable`).
     */
    async customerPublicChannels(customerId: string): Promise<CustomerChannel[]> {
      return (await this.call('GET /v1/customers/:customerId/public-channels', { params: { customerId } })).channels
    }

    /**
     * Starts a conversation with a customer who has not written, on a channel they have (their number's SMS or
     * WhatsApp, their Messenger conversation); the caller joins it. The same `clientMessageId` never sends twice.
     *
     * @example
     * const { conversationId } = await staff.startPublicConversation(customerId, {
     *   connector: 'twilio',
     *   text: 'Hello Grace, this is Demo Bank about your card order.',
     * })
     */
    startPublicConversation(customerId: string, message: WithClientMessageId<OutreachMessage>) {
      return this.call('POST /v1/customers/:customerId/public-messages', {
        params: { customerId },
        body: {
          connector: message.connector,
          clientMessageId: message.clientMessageId ?? randomId(),
          text: message.text,
        },
      })
    }

    /**
     * Sends a customer who has not written a secure link on a channel they have, as `invitePivot` does in a
     * conversation: a live link is returned and not sent again (`message` absent).
     */
    sendSecureLink(
      customerId: string,
      options: CustomerPivotInvitation,
    ): Promise<{ conversationId: string; link: PivotLink; message?: SentPublicMessage }> {
      return this.call('POST /v1/customers/:customerId/pivot', { params: { customerId }, body: options })
    }
  }
}
