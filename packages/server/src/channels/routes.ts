import { Type } from '@sinclair/typebox'
import {
  ChannelConfig,
  ChannelSettings,
  ChannelSettingsList,
  ConversationChannelList,
  ConversationChannelQuery,
  DlpPolicy,
  DlpScanRequest,
  DlpScanResult,
  LinkPolicy,
  PublicChannelCustomer,
  PublicMessageList,
  PublicMessageListQuery,
  PublicMessageText,
  ReportReceived,
  ReportResolution,
  SentPublicMessage,
  SuspiciousMessage,
  SuspiciousReport,
  SuspiciousReportList,
  SuspiciousReportListQuery,
  WhatsAppTemplates,
} from '@strongroom/sdk/protocol'
import { recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { allow, forBrowsers, inConversation } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf, principalMember } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { principalOf } from '../platform/http/request.ts'
import { idOf, oneOf, problemResponses } from '../platform/http/schemas.ts'
import { configureChannel, listChannels } from './channel-config.ts'
import { conversationChannels } from './conversation-channels.ts'
import { scanText } from './dlp.ts'
import { loadDlpPatterns, requireValidPatterns, saveDlpPolicy } from './dlp-policy.ts'
import { linkIdentityCustomer } from './identities.ts'
import { loadLinkPolicy, saveLinkPolicy } from './link-policy.ts'
import { outreachRoutes } from './outreach-routes.ts'
import {
  type ChannelDeps,
  listPublicMessages,
  refuseSensitiveData,
  requirePublicIdentity,
  sendPublicMessage,
} from './public-messages.ts'
import { fileSuspiciousReport, listSuspiciousReports, resolveSuspiciousReport } from './suspicious-reports.ts'
import { loadWhatsAppTemplates, saveWhatsAppTemplates } from './whatsapp-templates.ts'

const ConversationParams = Type.Object({ conversationId: idOf('cnv') })
const Connector = oneOf(['twilio', 'whatsapp', 'messenger', 'smpp', 'rbm'] as const)

/** A channel as staff see it, with the state of this node's SMPP link where it has one. */
function withLinkState(deps: ChannelDeps, view: ChannelSettings, tenantId: string): ChannelSettings {
  const link = view.connector === 'smpp' ? deps.smppLinks.stateOf(tenantId) : undefined
  return link ? { ...view, link } : view
}

export async function channelRoutes(app: App, ctx: ServerContext, deps: ChannelDeps): Promise<void> {
  await channelConfigRoutes(app, ctx, deps)
  await channelListRoutes(app, ctx, deps)
  await publicMessageRoutes(app, ctx, deps)
  await publicCustomerRoutes(app, ctx)
  await outreachRoutes(app, ctx, deps)
  await dlpPolicyRoutes(app, ctx)
  await linkPolicyRoutes(app, ctx)
  await whatsAppTemplateRoutes(app, ctx)
  await dlpScanRoutes(app, ctx)
  await suspiciousReportRoutes(app, ctx)
}

/** Configuring a public channel. */
async function channelConfigRoutes(app: App, ctx: ServerContext, deps: ChannelDeps): Promise<void> {
  app.put(
    '/v1/channels/:connector',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary:
          'Configure a public channel: its receiving number or page, settings and credentials (stored encrypted, ' +
          'never returned; a secret left out keeps its stored value)',
        tags: ['channels'],
        params: Type.Object({ connector: Connector }),
        body: ChannelConfig,
        response: { 200: ChannelSettings, ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const { address, secrets, ...settings } = request.body
      const principal = principalOf(request)
      const { connector } = request.params
      const view = await configureChannel(ctx, principal, connector, { address, settings, secrets })
      if (connector !== 'smpp') return view
      await deps.smppLinks.configured(principal.tenantId)
      return withLinkState(deps, view, principal.tenantId)
    },
  )
}

/** The channels a tenant has, and the conversations on them. */
async function channelListRoutes(app: App, ctx: ServerContext, deps: ChannelDeps): Promise<void> {
  app.get(
    '/v1/channels',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: "The tenant's public channels (without their secrets)",
        tags: ['channels'],
        response: { 200: ChannelSettingsList, ...problemResponses(401, 403) },
      },
    },
    async (request) => {
      const { tenantId } = principalOf(request)
      return { channels: (await listChannels(ctx, tenantId)).map((view) => withLinkState(deps, view, tenantId)) }
    },
  )

  app.get(
    '/v1/channels/conversations',
    {
      config: { access: allow.staff('conversations:read') },
      schema: {
        summary:
          'Which of these conversations belong to a public channel (SMS, WhatsApp, Messenger): the conversation on ' +
          'the channel, or the secure conversation a pivot moved it to. Others, and those the caller cannot see, are ' +
          'left out',
        tags: ['channels'],
        querystring: ConversationChannelQuery,
        response: {
          200: ConversationChannelList,
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request) => ({
      conversations: await conversationChannels(ctx, principalOf(request), request.query.ids.split(',')),
    }),
  )
}

/** Sending and reading the messages of a public conversation. */
async function publicMessageRoutes(app: App, ctx: ServerContext, deps: ChannelDeps): Promise<void> {
  app.post(
    '/v1/conversations/:conversationId/public-messages',
    {
      config: { access: inConversation(allow.staff('conversations:write')) },
      schema: {
        summary:
          'Send a message to the customer on the public channel of the conversation (refused if it holds card or ' +
          'account data); the same clientMessageId never sends twice',
        tags: ['channels'],
        params: ConversationParams,
        body: PublicMessageText,
        response: { 201: SentPublicMessage, ...problemResponses(400, 401, 403, 404, 409, 422, 502, 503) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const { conversationId } = request.params
      const identity = await requirePublicIdentity(ctx, principal.tenantId, conversationId)
      await refuseSensitiveData(
        ctx,
        principal,
        { kind: 'conversation', id: conversationId },
        identity.connector,
        request.body.text,
      )
      const sent = await sendPublicMessage(ctx, deps, {
        tenantId: principal.tenantId,
        conversationId,
        sender: { kind: 'staff', id: principalMember(principal).id },
        clientMessageId: `agent-${request.body.clientMessageId}`,
        text: request.body.text,
      })
      return reply.status(201).send(sent)
    },
  )

  app.get(
    '/v1/conversations/:conversationId/public-messages',
    {
      config: { access: allow.member('conversations:read') },
      schema: {
        summary:
          'The public-channel messages of a conversation, opened (the public thread, or the history a pivot ' +
          'imported into a secure conversation), with delivery states',
        tags: ['channels'],
        params: ConversationParams,
        querystring: PublicMessageListQuery,
        response: { 200: PublicMessageList, ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => ({
      messages: await listPublicMessages(ctx, principalOf(request), request.params.conversationId, {
        afterSeq: request.query.after ?? 0,
        limit: request.query.limit ?? 200,
      }),
    }),
  )
}

/** Linking a public conversation to a customer. */
async function publicCustomerRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/conversations/:conversationId/public-channel/customer',
    {
      config: { access: inConversation(allow.staff('customers:write')) },
      schema: {
        summary: 'Link an unidentified public-channel conversation to the customer the agent established it is',
        tags: ['channels'],
        params: ConversationParams,
        body: PublicChannelCustomer,
        response: { 204: Type.Null(), ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const { conversationId } = request.params
      const identity = await requirePublicIdentity(ctx, principal.tenantId, conversationId)
      await linkIdentityCustomer(ctx, identity, request.body.customerId)
      await recordAudit(ctx.db, {
        tenantId: principal.tenantId,
        actor: actorOf(principal),
        action: 'channels.identity.link',
        target: { kind: 'conversation', id: conversationId },
        outcome: 'success',
        details: { customerId: request.body.customerId, channel: identity.connector },
      })
      return reply.status(204).send(null)
    },
  )
}

/** The tenant's data-loss prevention policy. */
async function dlpPolicyRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/policies/dlp',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: "The tenant's own patterns (account or national id formats) masked on public channels",
        tags: ['channels'],
        response: { 200: DlpPolicy, ...problemResponses(401, 403) },
      },
    },
    async (request) => ({ patterns: await loadDlpPatterns(ctx, principalOf(request).tenantId) }),
  )

  app.put(
    '/v1/policies/dlp',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary:
          'Replace the patterns masked on public channels, inbound and outbound, beside card numbers, CVVs and IBANs ' +
          '(audited)',
        tags: ['channels'],
        body: DlpPolicy,
        response: { 200: DlpPolicy, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      await saveDlpPolicy(ctx, principal.tenantId, request.body, actorOf(principal))
      return request.body
    },
  )
}

/** The tenant's policy for links in public messages. */
async function linkPolicyRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/policies/links',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: "The bank's registered domains and sender IDs (smishing, spoofing and outbound link checks)",
        tags: ['channels'],
        response: { 200: LinkPolicy, ...problemResponses(401, 403) },
      },
    },
    async (request) => loadLinkPolicy(ctx, principalOf(request).tenantId),
  )

  app.put(
    '/v1/policies/links',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary:
          "Register the bank's domains (links on public channels must point there; lookalikes of them in inbound " +
          'messages are flagged) and its sender IDs and numbers (inbound messages claiming them are flagged as ' +
          'spoofed); audited',
        tags: ['channels'],
        body: LinkPolicy,
        response: { 200: LinkPolicy, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      return saveLinkPolicy(ctx, principal.tenantId, request.body, actorOf(principal))
    },
  )
}

/** The WhatsApp templates the bank had approved, used outside the 24-hour customer service window. */
async function whatsAppTemplateRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/channels/whatsapp/templates',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: "The bank's WhatsApp templates, sent instead of free text outside the 24-hour window",
        tags: ['channels'],
        response: { 200: WhatsAppTemplates, ...problemResponses(401, 403) },
      },
    },
    async (request) => loadWhatsAppTemplates(ctx, principalOf(request).tenantId),
  )

  app.put(
    '/v1/channels/whatsapp/templates',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary:
          'Register the WhatsApp templates approved at Meta (name, language, category, parameters): one for a message ' +
          'and one for the pivot (with its URL button), used automatically outside the 24-hour window; audited',
        tags: ['channels'],
        body: WhatsAppTemplates,
        response: { 200: WhatsAppTemplates, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      return saveWhatsAppTemplates(ctx, principal.tenantId, request.body, actorOf(principal))
    },
  )
}

/** Scanning a text before it is sent. */
async function dlpScanRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/dlp/scan',
    {
      config: { access: allow.staff('conversations:write') },
      schema: {
        summary:
          'Mask card numbers, CVVs, IBANs and the given patterns in a text meant for a public channel (SMS, WhatsApp, ' +
          'Messenger) before it is sent or stored',
        tags: ['channels'],
        body: DlpScanRequest,
        response: {
          200: DlpScanResult,
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const patterns = request.body.patterns ?? []
      requireValidPatterns(patterns)
      const result = scanText(request.body.text, [...(await loadDlpPatterns(ctx, principal.tenantId)), ...patterns])
      if (result.findings.length > 0) {
        await recordAudit(ctx.db, {
          tenantId: principal.tenantId,
          actor: actorOf(principal),
          action: 'dlp.mask',
          outcome: 'success',
          details: { kinds: [...new Set(result.findings.map((f) => f.kind))], count: result.findings.length },
        })
      }
      return result
    },
  )
}

/**
 * Customers' reports of suspicious messages: made from the secure chat (or the app), queued for staff with the
 * smishing analysis, listed and resolved by staff. Reports forwarded by SMS join the same queue (inbound.ts).
 */
async function suspiciousReportRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/suspicious-reports',
    {
      // A browser may always report: it keeps the customer safe, whatever the tenant lets browsers do.
      config: { access: forBrowsers('always', allow.device) },
      schema: {
        summary:
          "Report a suspicious message the customer received (a text claiming to be the bank): queued for the bank's " +
          'staff with the analysis of its links; audited',
        tags: ['channels'],
        body: SuspiciousMessage,
        response: { 201: ReportReceived, ...problemResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      if (principal.kind !== 'device') throw new Problem('auth/forbidden', 'this is for devices')
      const id = await ctx.db.transaction().execute((trx) =>
        fileSuspiciousReport(ctx, trx, {
          tenantId: principal.tenantId,
          source: 'secure-chat',
          conversationId: null,
          customerId: principal.customerId,
          text: request.body.text,
          actor: actorOf(principal),
        }),
      )
      return reply.status(201).send({ id })
    },
  )

  app.get(
    '/v1/suspicious-reports',
    {
      config: { access: allow.staff('conversations:read') },
      schema: {
        summary: "Customers' reports of suspicious messages, newest first: the open ones (the queue) or the resolved",
        tags: ['channels'],
        querystring: SuspiciousReportListQuery,
        response: { 200: SuspiciousReportList, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const { status = 'open', limit = 50 } = request.query
      return { reports: await listSuspiciousReports(ctx, principalOf(request).tenantId, { status, limit }) }
    },
  )

  app.post(
    '/v1/suspicious-reports/:reportId/resolve',
    {
      config: { access: allow.staff('conversations:write') },
      schema: {
        summary: 'Close a report with what staff found (smishing, genuine or unclear); audited',
        tags: ['channels'],
        params: Type.Object({ reportId: idOf('rpt') }),
        body: ReportResolution,
        response: { 200: SuspiciousReport, ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const { reportId } = request.params
      return resolveSuspiciousReport(ctx, principal.tenantId, reportId, request.body.outcome, actorOf(principal))
    },
  )
}
