import type { ReportOutcome, SuspiciousReport } from '@strongroom/sdk/protocol'
import type { Selectable } from 'kysely'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import type { SuspiciousReportsTable } from '../platform/db/schema.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'
import type { EncryptedColumn } from '../platform/keyring/reencrypt.ts'
import { tenantChannelAddresses } from './channel-config.ts'
import { applyMasks, locateFindings } from './dlp.ts'
import { loadDlpPatterns } from './dlp-policy.ts'
import { assessInbound, loadLinkPolicy } from './link-policy.ts'
import { analyzeLinks } from './link-safety.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring'>

/**
 * An SMS that reports a suspicious message: the customer forwards it to the bank's number after the word REPORT (or
 * as a phone's "Fwd:" forward). The rest is the reported text.
 */
const SMS_REPORT = /^\s*(?:report\b|fwd?:)[\s:.-]*([\s\S]+)$/i

/** The text an inbound SMS reports, or undefined when it is an ordinary message. */
export function reportedInSms(text: string): string | undefined {
  const reported = SMS_REPORT.exec(text)?.[1]?.trim()
  return reported ? reported : undefined
}

interface Sealed {
  text: string
  links: { host: string; verdict: string }[]
}

const fieldOf = (id: string) => ({ table: 'suspicious_reports', column: 'sealed', rowId: id })

/** For `keys reencrypt` and `keys retire`. */
export const suspiciousReportEncryptedColumns: EncryptedColumn[] = [
  { table: 'suspicious_reports', column: 'sealed', key: ['id'], field: (row) => fieldOf(row.id as string) },
]

/**
 * Queues a customer's report for staff with the smishing analysis of what they reported: every link's host and its
 * verdict against the bank's domains, and the risk flags. The text is DLP-masked first (a reported message may hold
 * the customer's card number) and sealed; the report and its audit event commit together (in the caller's
 * transaction, `db`).
 */
export async function fileSuspiciousReport(
  ctx: Ctx,
  db: ServerContext['db'],
  input: {
    tenantId: string
    source: SuspiciousReport['source']
    conversationId: string | null
    customerId: string | null
    text: string
    actor: Actor
  },
): Promise<string> {
  const { tenantId } = input
  // Read in the caller's transaction: the embedded database has one connection, which that transaction holds.
  const inTransaction = { ...ctx, db }
  const text = applyMasks(input.text, locateFindings(input.text, await loadDlpPatterns(inTransaction, tenantId))).masked
  const policy = await loadLinkPolicy(inTransaction, tenantId)
  // Only the links are judged: who sent the report is the customer, not the one who claimed to be the bank.
  const { flags } = assessInbound(text, '', policy, await tenantChannelAddresses(inTransaction, tenantId))
  const sealed: Sealed = { text, links: analyzeLinks(text, policy.domains) }
  const id = newId('rpt')
  await db
    .insertInto('suspicious_reports')
    .values({
      tenant_id: tenantId,
      id,
      source: input.source,
      conversation_id: input.conversationId,
      customer_id: input.customerId,
      sealed: await ctx.keyring.encrypt(tenantId, fieldOf(id), JSON.stringify(sealed)),
      flags: JSON.stringify(flags),
      status: 'open',
      outcome: null,
      resolved_by: null,
      resolved_at: null,
      created_at: new Date(),
    })
    .execute()
  await recordAudit(db, {
    tenantId,
    actor: input.actor,
    action: 'channels.report.received',
    target: { kind: 'suspicious-report', id },
    outcome: 'success',
    details: { source: input.source, flags, links: sealed.links.length },
  })
  return id
}

/**
 * A data-subject erasure takes the customer's reports with it: their text is sealed under the tenant's key, not the
 * customer's archive key, so shredding that key would leave it readable. Runs in the erasure's transaction.
 */
export async function forgetCustomerReports(db: ServerContext['db'], tenantId: string, customerId: string) {
  await db
    .deleteFrom('suspicious_reports')
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .execute()
}

/** The tenant's reports, newest first: the open ones (the queue), or the resolved ones. */
export async function listSuspiciousReports(
  ctx: Ctx,
  tenantId: string,
  query: { status: SuspiciousReport['status']; limit: number },
): Promise<SuspiciousReport[]> {
  const rows = await ctx.db
    .selectFrom('suspicious_reports')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('status', '=', query.status)
    .orderBy('created_at', 'desc')
    .orderBy('id')
    .limit(query.limit)
    .execute()
  return Promise.all(rows.map((row) => viewOf(ctx, row)))
}

/** Closes a report with what staff found; audited. A report already resolved is not resolved again (409). */
export async function resolveSuspiciousReport(
  ctx: Ctx,
  tenantId: string,
  id: string,
  outcome: ReportOutcome,
  actor: Actor,
): Promise<SuspiciousReport> {
  return ctx.db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable('suspicious_reports')
      .set({ status: 'resolved', outcome, resolved_by: actor.id, resolved_at: new Date() })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .where('status', '=', 'open')
      .returningAll()
      .executeTakeFirst()
    if (!row) {
      const exists = await trx
        .selectFrom('suspicious_reports')
        .select('id')
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .executeTakeFirst()
      throw exists ? new Problem('channels/report-resolved') : new Problem('request/not-found', 'no such report')
    }
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'channels.report.resolved',
      target: { kind: 'suspicious-report', id },
      outcome: 'success',
      details: { outcome },
    })
    return viewOf(ctx, row)
  })
}

async function viewOf(ctx: Ctx, row: Selectable<SuspiciousReportsTable>): Promise<SuspiciousReport> {
  const sealed = JSON.parse(await ctx.keyring.decryptText(row.tenant_id, fieldOf(row.id), row.sealed)) as Sealed
  return {
    id: row.id,
    source: row.source,
    conversationId: row.conversation_id,
    customerId: row.customer_id,
    text: sealed.text,
    flags: JSON.parse(row.flags) as string[],
    links: sealed.links,
    status: row.status,
    outcome: row.outcome,
    resolvedBy: row.resolved_by,
    resolvedAt: row.resolved_at === null ? null : new Date(row.resolved_at).toISOString(),
    createdAt: new Date(row.created_at).toISOString(),
  }
}
