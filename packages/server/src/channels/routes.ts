import type { AuthenticationResponseJSON } from '@simplewebauthn/server'
import { Type } from '@sinclair/typebox'
import { principalOf, requestHtu, singleHeader } from '../access.ts'
import { recordAudit } from '../audit/events.ts'
import { AssertionCredential } from '../auth/passkey-routes.ts'
import type { SimSwapProvider } from '../auth/sim-swap.ts'
import { requireConversationAccess } from '../conversations/conversations.ts'
import { verifyDpopProof } from '../identity/dpop.ts'
import { DeviceSchema, TokenSchema } from '../identity/routes.ts'
import type { ServerContext } from '../platform/context.ts'
import type { App } from '../platform/http/fastify.ts'
import { Problem } from '../platform/http/problems.ts'
import { idOf, oneOf, problemResponses } from '../platform/http/schemas.ts'
import { actorOf, principalMember } from '../principal.ts'
import { configureChannel, listChannels } from './channel-config.ts'
import { scanText } from './dlp.ts'
import { linkIdentityCustomer } from './identities.ts'
import { invitePivot, listPivotLinks, openPivotLink, redeemPivot } from './pivot.ts'
import { enrolWithPivotLink, pivotStepUpOptions, sendPivotSmsCode } from './pivot-step-up.ts'
import { type ChannelDeps, listPublicMessages, requirePublicIdentity, sendPublicMessage } from './public-messages.ts'

const ConversationParams = Type.Object({ conversationId: idOf('cnv') })
const Connector = oneOf(['twilio', 'whatsapp', 'messenger'] as const)
const Secret = Type.String({ minLength: 8, maxLength: 1024 })
const ChannelView = Type.Object({
  connector: Type.String(),
  address: Type.String(),
  accountSid: Type.Optional(Type.String()),
  apiVersion: Type.Optional(Type.String()),
  agentId: Type.Optional(Type.String()),
  secretsSet: Type.Array(Type.String(), { description: 'which secrets are stored; their values are never returned' }),
  updatedAt: Type.String(),
})
const Delivery = Type.Object({
  status: Type.String({ description: 'pending, queued, sent, delivered, read or failed' }),
  errorCode: Type.Union([Type.String(), Type.Null()]),
})
const PublicMessage = Type.Object({
  id: Type.String(),
  seq: Type.Integer(),
  sender: Type.Object({ kind: Type.String(), id: Type.String() }),
  direction: oneOf(['inbound', 'outbound'] as const),
  channel: Type.String(),
  text: Type.String({ description: 'as stored: masked where DLP found card or account data' }),
  masked: Type.Array(Type.String()),
  mediaCount: Type.Integer(),
  linkLabel: Type.Union([Type.String(), Type.Null()]),
  at: Type.String(),
  imported: Type.Boolean({ description: 'public-channel history imported into a secure conversation' }),
  delivery: Type.Union([Delivery, Type.Null()]),
})
const SentMessage = Type.Object({
  messageId: Type.String(),
  seq: Type.Integer(),
  delivery: Type.Object({
    status: Type.String(),
    providerMessageId: Type.Union([Type.String(), Type.Null()]),
    errorCode: Type.Union([Type.String(), Type.Null()]),
  }),
})
const PivotLink = Type.Object({
  id: Type.String(),
  conversationId: Type.String(),
  status: oneOf(['sent', 'opened', 'completed', 'expired'] as const),
  completedVia: Type.Union([oneOf(['device', 'passkey', 'sms-otp'] as const), Type.Null()], {
    description: 'an enrolled device redeemed it, or a new device enrolled with a passkey or an SMS code',
  }),
  createdBy: Type.Object({ kind: Type.String(), id: Type.Union([Type.String(), Type.Null()]) }),
  expiresAt: Type.String(),
  openedAt: Type.Union([Type.String(), Type.Null()]),
  completedAt: Type.Union([Type.String(), Type.Null()]),
  secureConversationId: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
})
const PivotToken = Type.Object(
  { token: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_-]+$' }) },
  { additionalProperties: false },
)

const StepUpFactor = Type.Union([
  Type.Object(
    { kind: Type.Literal('passkey'), assertion: AssertionCredential },
    { additionalProperties: false, description: 'navigator.credentials.get with the step-up options, toJSON()' },
  ),
  Type.Object(
    { kind: Type.Literal('sms-otp'), code: Type.String({ pattern: '^[0-9]{6}$' }) },
    { additionalProperties: false, description: 'the code POST /v1/pivot/step-up/sms sent' },
  ),
])

export async function channelRoutes(
  app: App,
  ctx: ServerContext,
  deps: ChannelDeps,
  factors: { simSwap: () => SimSwapProvider },
): Promise<void> {
  app.put(
    '/v1/channels/:connector',
    {
      schema: {
        summary:
          'Configure a public channel: its receiving number or page, settings and credentials (stored encrypted, ' +
          'never returned; a secret left out keeps its stored value)',
        tags: ['channels'],
        params: Type.Object({ connector: Connector }),
        body: Type.Object(
          {
            address: Type.String({
              minLength: 1,
              maxLength: 64,
              pattern: '^\\+?[0-9A-Za-z_-]+$',
              description: 'the Twilio number (E.164), WhatsApp phone-number id or Facebook page id',
            }),
            accountSid: Type.Optional(Type.String({ pattern: '^AC[0-9a-fA-F]{32}$' })),
            apiVersion: Type.Optional(Type.String({ pattern: '^v[0-9]{1,3}\\.[0-9]{1,2}$' })),
            agentId: Type.Optional(idOf('stf')),
            baseUrl: Type.Optional(Type.String({ pattern: '^https?://', description: 'dev mode only' })),
            secrets: Type.Object(
              {
                authToken: Type.Optional(Secret),
                appSecret: Type.Optional(Secret),
                accessToken: Type.Optional(Secret),
                verifyToken: Type.Optional(Type.String({ minLength: 16, maxLength: 256, pattern: '^[\\w-]+$' })),
              },
              { additionalProperties: false },
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: ChannelView, ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const { address, secrets, ...settings } = request.body
      return configureChannel(ctx, principalOf(request), request.params.connector, { address, settings, secrets })
    },
  )

  app.get(
    '/v1/channels',
    {
      schema: {
        summary: "The tenant's public channels (without their secrets)",
        tags: ['channels'],
        response: { 200: Type.Object({ channels: Type.Array(ChannelView) }), ...problemResponses(401, 403) },
      },
    },
    async (request) => ({ channels: await listChannels(ctx, principalOf(request).tenantId) }),
  )

  app.post(
    '/v1/conversations/:conversationId/public-messages',
    {
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
        response: { 201: SentMessage, ...problemResponses(400, 401, 403, 404, 409, 422, 502, 503) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const { conversationId } = request.params
      await requireConversationAccess(ctx, principal, conversationId)
      const identity = await requirePublicIdentity(ctx, principal.tenantId, conversationId)
      const { findings } = scanText(request.body.text)
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

  app.post(
    '/v1/conversations/:conversationId/public-channel/customer',
    {
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
      await requireConversationAccess(ctx, principal, conversationId)
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

  app.post(
    '/v1/conversations/:conversationId/pivot',
    {
      schema: {
        summary:
          'Invite the customer to the secure channel: a single-use, short-lived link is sent on the public channel',
        tags: ['channels'],
        params: ConversationParams,
        body: Type.Optional(
          Type.Object(
            { ttlSeconds: Type.Optional(Type.Integer({ minimum: 30, maximum: 3600 })) },
            { additionalProperties: false },
          ),
        ),
        response: {
          201: Type.Object({ link: PivotLink, message: SentMessage }),
          ...problemResponses(400, 401, 403, 404, 409, 502, 503),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const { conversationId } = request.params
      await requireConversationAccess(ctx, principal, conversationId)
      const result = await invitePivot(ctx, deps, {
        tenantId: principal.tenantId,
        conversationId,
        createdBy: { kind: 'staff', id: principalMember(principal).id },
        ttlSeconds: request.body?.ttlSeconds,
      })
      return reply.status(201).send(result)
    },
  )

  app.get(
    '/v1/conversations/:conversationId/pivot-links',
    {
      schema: {
        summary: 'The secure-channel links sent in a conversation and their states (sent, opened, completed, expired)',
        tags: ['channels'],
        params: ConversationParams,
        response: { 200: Type.Object({ links: Type.Array(PivotLink) }), ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      await requireConversationAccess(ctx, principal, request.params.conversationId)
      return { links: await listPivotLinks(ctx, principal.tenantId, request.params.conversationId) }
    },
  )

  app.post(
    '/v1/pivot/open',
    {
      schema: {
        summary:
          'The secure page opened a link: says whether it can still be used (and marks it opened); no personal data',
        tags: ['channels'],
        body: PivotToken,
        response: { 200: Type.Object({ expiresAt: Type.String() }), ...problemResponses(400, 409, 410) },
      },
    },
    async (request) => openPivotLink(ctx, request.body.token),
  )

  app.post(
    '/v1/pivot/redeem',
    {
      schema: {
        summary:
          "Redeem a link with the customer's enrolled device: the conversation continues in the secure channel " +
          'with its public history imported',
        tags: ['channels'],
        body: PivotToken,
        response: {
          200: Type.Object({ secureConversationId: Type.String(), importedMessages: Type.Integer() }),
          ...problemResponses(400, 401, 403, 409, 410),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      if (principal.kind !== 'device') throw new Problem('auth/forbidden', 'this is for devices')
      return redeemPivot(ctx, deps, principal, request.body.token)
    },
  )

  app.post(
    '/v1/pivot/step-up/options',
    {
      schema: {
        summary:
          "A browser that is not the customer's enrolled device: how it can prove it is the link's customer " +
          '(passkey options with a fresh challenge, and whether an SMS code can be sent); no personal data',
        tags: ['channels'],
        body: PivotToken,
        response: {
          200: Type.Object({
            expiresAt: Type.String({ description: 'when the link expires' }),
            passkey: Type.Union(
              [Type.Object({ challenge: Type.String() }, { additionalProperties: true }), Type.Null()],
              {
                description: 'for navigator.credentials.get as `publicKey`; null when the customer has no passkey',
              },
            ),
            sms: Type.Boolean({ description: "a code can be sent to the customer's number on file" }),
          }),
          ...problemResponses(400, 409, 410),
        },
      },
    },
    async (request, reply) =>
      reply.header('cache-control', 'no-store').send(await pivotStepUpOptions(ctx, request.body.token)),
  )

  app.post(
    '/v1/pivot/step-up/sms',
    {
      schema: {
        summary:
          "Send the link's customer a one-time code by SMS to their number on file (after a SIM-swap check; " +
          'resends limited)',
        tags: ['channels'],
        body: PivotToken,
        response: {
          202: Type.Object({ expiresAt: Type.String() }),
          ...problemResponses(400, 403, 409, 410, 429, 502, 503),
        },
      },
    },
    async (request, reply) => {
      const sent = await sendPivotSmsCode(ctx, { channels: deps, simSwap: factors.simSwap() }, request.body.token)
      return reply.status(202).header('cache-control', 'no-store').send(sent)
    },
  )

  app.post(
    '/v1/pivot/enrol',
    {
      schema: {
        summary:
          'Step up with the link and a fresh factor of its customer: the key that signs the DPoP proof becomes the ' +
          "customer's new device and redeems the link, in one transaction",
        tags: ['channels'],
        body: Type.Object(
          {
            token: PivotToken.properties.token,
            label: Type.String({ minLength: 1, maxLength: 100 }),
            factor: StepUpFactor,
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            device: DeviceSchema,
            tenantId: Type.String(),
            token: TokenSchema,
            secureConversationId: Type.String(),
            importedMessages: Type.Integer(),
          }),
          ...problemResponses(400, 401, 409, 410),
        },
      },
    },
    async (request, reply) => {
      const proof = await verifyDpopProof(ctx, singleHeader(request.headers.dpop), {
        htm: 'POST',
        htu: requestHtu(request),
      })
      const { factor } = request.body
      const enrolled = await enrolWithPivotLink(ctx, deps, proof, {
        token: request.body.token,
        label: request.body.label,
        factor:
          factor.kind === 'passkey'
            ? { kind: 'passkey', assertion: factor.assertion as unknown as AuthenticationResponseJSON }
            : factor,
      })
      return reply.status(201).header('cache-control', 'no-store').send(enrolled)
    },
  )

  app.post(
    '/v1/dlp/scan',
    {
      schema: {
        summary:
          'Mask card numbers, CVVs, IBANs and the given patterns in a text meant for a public channel (SMS, WhatsApp, ' +
          'Messenger) before it is sent or stored',
        tags: ['channels'],
        body: Type.Object(
          {
            text: Type.String({ maxLength: 65536 }),
            patterns: Type.Optional(
              Type.Array(
                Type.Object(
                  {
                    label: Type.String({ minLength: 1, maxLength: 60 }),
                    pattern: Type.String({ minLength: 1, maxLength: 200 }),
                  },
                  { additionalProperties: false },
                ),
                { maxItems: 20 },
              ),
            ),
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
      let result: ReturnType<typeof scanText>
      try {
        result = scanText(request.body.text, request.body.patterns ?? [])
      } catch {
        // A tenant pattern that is not a valid regular expression.
        throw new Problem('request/invalid', 'a pattern is not a valid regular expression')
      }
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
