import { Type } from '@sinclair/typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { Problem } from '../platform/http/problems.ts'
import { problemResponses } from '../platform/http/schemas.ts'
import {
  findChannelByAddress,
  findChannelByVerifyToken,
  type WebhookChannelConfig,
  webhookConnectorFor,
} from './channel-config.ts'
import type { WebhookConnectorKind, WebhookEvents } from './connectors/connector.ts'
import { SubscriptionVerificationError, WebhookPayloadError, WebhookSignatureError } from './connectors/errors.ts'
import { answerMetaSubscription } from './connectors/meta.ts'
import { answerRbmVerification, rbmWebhookAgent } from './connectors/rbm.ts'
import { processWebhookEvents } from './inbound.ts'
import type { ChannelDeps } from './public-messages.ts'

/** Webhook bodies are small; a megabyte is far more than any provider sends. */
const WEBHOOK_BODY_LIMIT = 1024 * 1024

type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'bus' | 'config' | 'log' | 'metrics'>

/** Refuses a webhook that is not from the provider, counting why (the caller learns nothing more). */
function refuse(ctx: Ctx, connector: WebhookConnectorKind, reason: string, request: FastifyRequest): never {
  ctx.metrics.channelWebhookRefusals.inc({ connector, reason })
  ctx.log.warn({ connector, reason, ip: request.ip }, 'channel webhook refused')
  throw new Problem('channels/invalid-signature')
}

/** Verifies a webhook by its provider's signature, stores what it carries, and answers as the provider expects. */
async function receive(
  ctx: Ctx,
  deps: ChannelDeps,
  connector: WebhookConnectorKind,
  request: FastifyRequest,
  reply: FastifyReply,
  address: string | undefined,
  answer: { type: string; body: string },
) {
  const rawBody = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0)
  const found = address ? await findChannelByAddress(ctx, connector, address) : undefined
  if (!found) refuse(ctx, connector, 'unknown-receiver', request)
  const channel: WebhookChannelConfig = { ...found, connector }
  let events: WebhookEvents
  try {
    events = webhookConnectorFor(channel, deps.env).receive({
      // The URL the provider called, as it knows us (Twilio signs it).
      url: `${deps.env.publicUrl()}${request.url}`,
      headers: request.headers,
      rawBody,
    })
  } catch (error) {
    if (error instanceof WebhookSignatureError) refuse(ctx, connector, error.reason, request)
    if (error instanceof WebhookPayloadError) {
      ctx.log.warn({ connector, reason: error.reason }, 'channel webhook payload unreadable')
      throw new Problem('channels/malformed-webhook')
    }
    throw error
  }
  await processWebhookEvents(ctx, deps, channel, events)
  return reply.type(answer.type).send(answer.body)
}

const described = (connector: string, what: string) => ({
  summary: `${connector} webhook: ${what} (authenticated by the provider's signature)`,
  tags: ['channels'],
  response: { 200: Type.String(), ...problemResponses(400, 401, 403, 415) },
})

/**
 * The providers' webhooks. They carry no Strongroom credentials (access `anyone`): each is authenticated by its
 * provider's signature over the exact bytes received, so in this plugin's scope only, bodies are kept raw. The tenant
 * is found from the receiving number or page; an unknown receiver, a missing or bad signature is refused (401) before
 * anything is stored, leaving a counter and a log line without the body.
 */
export async function channelWebhookRoutes(app: App, ctx: Ctx, deps: ChannelDeps): Promise<void> {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser(
    /^application\/(json|x-www-form-urlencoded)\b/,
    { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT },
    (_request, body, done) => done(null, body),
  )
  app.addContentTypeParser('*', (_request, _payload, done) => done(new Problem('request/unsupported-media-type')))

  // Authenticated by the provider's signature (or, for the handshake, Meta's verify token), not by our credentials.
  app.post(
    '/v1/channels/twilio/webhook',
    { config: { access: allow.anyone }, schema: described('Twilio', 'inbound SMS and status callbacks') },
    (request, reply) => {
      const params = new URLSearchParams(Buffer.isBuffer(request.body) ? request.body.toString('utf8') : '')
      // Status callbacks are about our messages, sent from our number; inbound messages are sent to it.
      const address = (params.has('MessageStatus') ? params.get('From') : params.get('To')) ?? undefined
      // An empty TwiML response: Twilio sends nothing back to the customer.
      return receive(ctx, deps, 'twilio', request, reply, address, {
        type: 'text/xml',
        body: '<?xml version="1.0" encoding="UTF-8"?><Response></Response>',
      })
    },
  )

  // Authenticated by the provider's signature (or, for the handshake, Meta's verify token), not by our credentials.
  for (const connector of ['whatsapp', 'messenger'] as const) {
    app.post(
      `/v1/channels/${connector}/webhook`,
      { config: { access: allow.anyone }, schema: described(connector, 'messages and statuses') },
      (request, reply) =>
        receive(ctx, deps, connector, request, reply, metaReceiver(connector, request.body), {
          type: 'text/plain',
          body: 'EVENT_RECEIVED',
        }),
    )
    app.get(
      `/v1/channels/${connector}/webhook`,
      { config: { access: allow.anyone }, schema: described(connector, 'subscription handshake') },
      async (request, reply) => {
        const query = new URLSearchParams(request.url.split('?')[1] ?? '')
        const token = query.get('hub.verify_token') ?? ''
        const channel = token ? await findChannelByVerifyToken(ctx, connector, token) : undefined
        try {
          if (!channel?.secrets.verifyToken) throw new SubscriptionVerificationError()
          const challenge = answerMetaSubscription(query, channel.secrets.verifyToken)
          return reply.type('text/plain').send(challenge)
        } catch (error) {
          if (!(error instanceof SubscriptionVerificationError)) throw error
          ctx.metrics.channelWebhookRefusals.inc({ connector, reason: 'verify-token' })
          ctx.log.warn({ connector, ip: request.ip }, 'channel webhook handshake refused')
          throw new Problem('channels/verification-refused')
        }
      },
    )
  }
  // Authenticated by X-Goog-Signature (or, for the handshake, the client token), not by our credentials.
  app.post(
    '/v1/channels/rbm/webhook',
    { config: { access: allow.anyone }, schema: described('RCS Business Messaging', 'messages and events') },
    async (request, reply) => {
      const rawBody = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0)
      if (request.headers['x-goog-signature'] === undefined) return rbmHandshake(ctx, request, reply, rawBody)
      return receive(ctx, deps, 'rbm', request, reply, rbmWebhookAgent(rawBody), { type: 'text/plain', body: '' })
    },
  )
}

/**
 * RBM's webhook verification, when a webhook is set in the developer console: an unsigned POST of the client token
 * and a secret, answered with the secret when the token is one of ours.
 */
async function rbmHandshake(ctx: Ctx, request: FastifyRequest, reply: FastifyReply, rawBody: Buffer) {
  try {
    const { clientToken, secret } = answerRbmVerification(rawBody)
    const channel = await findChannelByVerifyToken(ctx, 'rbm', clientToken)
    if (!channel) throw new SubscriptionVerificationError()
    return reply.type('text/plain').send(secret)
  } catch (error) {
    if (!(error instanceof SubscriptionVerificationError)) throw error
    ctx.metrics.channelWebhookRefusals.inc({ connector: 'rbm', reason: 'verify-token' })
    ctx.log.warn({ connector: 'rbm', ip: request.ip }, 'channel webhook handshake refused')
    throw new Problem('channels/verification-refused')
  }
}

/**
 * Which of our pages or numbers a Meta webhook is for, read before the signature is checked only to find the tenant
 * whose app secret checks it. A body that cannot say is refused like an unsigned one.
 */
function metaReceiver(connector: 'whatsapp' | 'messenger', body: unknown): string | undefined {
  try {
    const payload = JSON.parse(Buffer.isBuffer(body) ? body.toString('utf8') : '')
    const entry = payload?.entry?.[0]
    const id = connector === 'messenger' ? entry?.id : entry?.changes?.[0]?.value?.metadata?.phone_number_id
    return typeof id === 'string' && id !== '' ? id : undefined
  } catch {
    return undefined
  }
}
