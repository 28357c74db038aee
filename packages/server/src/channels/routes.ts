import { Type } from '@sinclair/typebox'
import {
  ConversationChannel,
  PublicMessage,
  ReportOutcome,
  SentPublicMessage,
  SuspiciousReport,
} from '@strongroom/sdk/protocol'
import { recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { allow, forBrowsers, inConversation } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf, principalMember } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { principalOf } from '../platform/http/request.ts'
import { idOf, oneOf, problemResponses } from '../platform/http/schemas.ts'
import { type ChannelView, configureChannel, listChannels } from './channel-config.ts'
import { conversationChannels } from './conversation-channels.ts'
import { scanText } from './dlp.ts'
import { DlpPatterns, DlpPolicy, loadDlpPatterns, requireValidPatterns, saveDlpPolicy } from './dlp-policy.ts'
import { linkIdentityCustomer } from './identities.ts'
import { LinkPolicy, loadLinkPolicy, saveLinkPolicy } from './link-policy.ts'
import { type ChannelDeps, listPublicMessages, requirePublicIdentity, sendPublicMessage } from './public-messages.ts'
import { fileSuspiciousReport, listSuspiciousReports, resolveSuspiciousReport } from './suspicious-reports.ts'
import { loadWhatsAppTemplates, saveWhatsAppTemplates, WhatsAppTemplates } from './whatsapp-templates.ts'

const ConversationParams = Type.Object({ conversationId: idOf('cnv') })
const CONVERSATION_ID = 'cnv_[A-Za-z0-9_-]{22}'
const Connector = oneOf(['twilio', 'whatsapp', 'messenger', 'smpp', 'rbm'] as const)
const Secret = Type.String({ minLength: 8, maxLength: 1024 })
const ChannelViewSchema = Type.Object({
  connector: Type.String(),
  address: Type.String(),
  accountSid: Type.Optional(Type.String()),
  apiVersion: Type.Optional(Type.String()),
  agentId: Type.Optional(Type.String()),
  host: Type.Optional(Type.String()),
  port: Type.Optional(Type.Integer()),
  tls: Type.Optional(Type.Boolean()),
  systemId: Type.Optional(Type.String()),
  systemType: Type.Optional(Type.String()),
  verifiedSender: Type.Optional(Type.String()),
  humanAgentTag: Type.Optional(Type.Boolean()),
  link: Type.Optional(
    Type.String({
      description: "SMPP: this node's link to the SMSC: connecting, bound, disconnected, bind-refused or closed",
    }),
  ),
  secretsSet: Type.Array(Type.String(), { description: 'which secrets are stored; their values are never returned' }),
  updatedAt: Type.String(),
})

/** A channel as staff see it, with the state of this node's SMPP link where it has one. */
function withLinkState(deps: ChannelDeps, view: ChannelView, tenantId: string): ChannelView & { link?: string } {
  const link = view.connector === 'smpp' ? deps.smppLinks.stateOf(tenantId) : undefined
  return link ? { ...view, link } : view
}

export async function channelRoutes(app: App, ctx: ServerContext, deps: ChannelDeps): Promise<void> {
  await channelConfigRoutes(app, ctx, deps)
  await channelListRoutes(app, ctx, deps)
  await publicMessageRoutes(app, ctx, deps)
  await publicCustomerRoutes(app, ctx)
  await dlpPolicyRoutes(app, ctx)
  await linkPolicyRoutes(app, ctx)
  await whatsAppTemplateRoutes(app, ctx)
  await dlpScanRoutes(app, ctx)
  await suspiciousReportRoutes(app, ctx)
}

/** A channel's settings and credentials as staff set them (each connector uses its own). */
const ChannelConfigBody = Type.Object(
  {
    address: Type.String({
      minLength: 1,
      maxLength: 110,
      pattern: '^\\+?[0-9A-Za-z_-]+(@rbm\\.goog)?$',
      description: 'the Twilio or SMPP number (E.164), WhatsApp phone-number id, Facebook page id or RBM agent id',
    }),
    accountSid: Type.Optional(Type.String({ pattern: '^AC[0-9a-fA-F]{32}$' })),
    apiVersion: Type.Optional(Type.String({ pattern: '^v[0-9]{1,3}\\.[0-9]{1,2}$' })),
    agentId: Type.Optional(idOf('stf')),
    baseUrl: Type.Optional(Type.String({ pattern: '^https?://', description: 'dev mode only' })),
    host: Type.Optional(
      Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.-]+$', description: 'SMPP: the SMSC' }),
    ),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    tls: Type.Optional(Type.Boolean({ description: 'SMPP over TLS' })),
    systemId: Type.Optional(
      Type.String({ minLength: 1, maxLength: 15, pattern: '^[\\x21-\\x7e]+$', description: 'SMPP system_id' }),
    ),
    systemType: Type.Optional(Type.String({ maxLength: 12, pattern: '^[\\x21-\\x7e]*$' })),
    verifiedSender: Type.Optional(
      Type.String({ minLength: 1, maxLength: 100, description: "RBM: the agent's verified display name" }),
    ),
    humanAgentTag: Type.Optional(
      Type.Boolean({
        description: 'Messenger: the Human Agent permission is granted (HUMAN_AGENT replies, 7 days)',
      }),
    ),
    secrets: Type.Object(
      {
        authToken: Type.Optional(Secret),
        appSecret: Type.Optional(Secret),
        accessToken: Type.Optional(Secret),
        verifyToken: Type.Optional(Type.String({ minLength: 16, maxLength: 256, pattern: '^[\\w-]+$' })),
        clientToken: Type.Optional(Type.String({ minLength: 16, maxLength: 256, pattern: '^[\\w-]+$' })),
        serviceAccountKey: Type.Optional(
          Type.String({
            minLength: 100,
            maxLength: 8192,
            description: "RBM: the agent's service account JSON key, as the Google Cloud console downloads it",
          }),
        ),
        password: Type.Optional(
          Type.String({
            minLength: 1,
            maxLength: 8,
            pattern: '^[\\x21-\\x7e]+$',
            description: 'SMPP password (SMPP 3.4 allows 8 characters at most)',
          }),
        ),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
)

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
        body: ChannelConfigBody,
        response: { 200: ChannelViewSchema, ...problemResponses(400, 401, 403, 404, 409) },
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
        response: { 200: Type.Object({ channels: Type.Array(ChannelViewSchema) }), ...problemResponses(401, 403) },
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
        querystring: Type.Object(
          {
            ids: Type.String({
              pattern: `^${CONVERSATION_ID}(,${CONVERSATION_ID}){0,99}$`,
              description: 'up to 100 conversation ids, comma-separated',
            }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ conversations: Type.Array(ConversationChannel) }),
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
        body: Type.Object(
          {
            clientMessageId: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9._:-]+$' }),
            text: Type.String({ minLength: 1, maxLength: 4096 }),
          },
          { additionalProperties: false },
        ),
        response: { 201: SentPublicMessage, ...problemResponses(400, 401, 403, 404, 409, 422, 502, 503) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const { conversationId } = request.params
      const identity = await requirePublicIdentity(ctx, principal.tenantId, conversationId)
      const { findings } = scanText(request.body.text, await loadDlpPatterns(ctx, principal.tenantId))
      if (findings.length > 0) {
        await recordAudit(ctx.db, {
          tenantId: principal.tenantId,
          actor: actorOf(principal),
          action: 'channels.dlp.refused',
          target: { kind: 'conversation', id: conversationId },
          outcome: 'denied',
          details: { channel: identity.connector, kinds: [...new Set(findings.map((f) => f.kind))] },
        })
        throw new Problem('channels/sensitive-data', 'invite the customer to the secure channel instead')
      }
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
        querystring: Type.Object(
          {
            after: Type.Optional(Type.Integer({ minimum: 0 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ messages: Type.Array(PublicMessage) }), ...problemResponses(401, 403, 404) },
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
        body: Type.Object({ customerId: idOf('cus') }, { additionalProperties: false }),
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
        body: Type.Object(
          {
            text: Type.String({ maxLength: 65536 }),
            patterns: Type.Optional(DlpPatterns),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            masked: Type.String(),
            findings: Type.Array(
              Type.Object({
                kind: Type.String(),
                label: Type.Optional(Type.String()),
                start: Type.Integer(),
                end: Type.Integer(),
              }),
            ),
          }),
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
        body: Type.Object(
          { text: Type.String({ minLength: 1, maxLength: 4096, description: 'the message as received' }) },
          { additionalProperties: false },
        ),
        response: { 201: Type.Object({ id: Type.String() }), ...problemResponses(400, 401, 403) },
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
        querystring: Type.Object(
          {
            status: Type.Optional(oneOf(['open', 'resolved'] as const)),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ reports: Type.Array(SuspiciousReport) }), ...problemResponses(400, 401, 403) },
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
        body: Type.Object({ outcome: ReportOutcome }, { additionalProperties: false }),
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
