import { createHmac, randomBytes } from 'node:crypto'
import { Type } from '@sinclair/typebox'
import type { PhoneMessage } from '@strongroom/sdk/simulator'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { Problem } from '../platform/http/problems.ts'
import { oneOf } from '../platform/http/schemas.ts'
import { type ChannelConfig, findChannelByAddress, listChannelAddresses } from './channel-config.ts'
import type { WebhookConnectorKind } from './connectors/connector.ts'
import { constantTimeEqual } from './connectors/constant-time.ts'
import { computeTwilioSignature } from './connectors/twilio.ts'
import { PhoneLog } from './simulator-phone-log.ts'

/**
 * Dev mode only: the channel simulator. It plays the customer's phone for each connector — it POSTs webhooks in the
 * provider's wire format, signed with the channel's own credentials, to the server's real webhook paths — and it
 * plays the providers' send APIs (the connectors' base URL points here in dev), recording both ways in a phone log
 * that a developer, a test or the simulator page reads (`@strongroom/sdk/simulator`). Nothing leaves the machine.
 */
export interface SimulatorUrls {
  /** Where the server listens: the simulator posts webhooks there. */
  listeningUrl: () => string
  /** The URL providers call us at, which Twilio signs. */
  publicUrl: () => string
}

const ConnectorParam = Type.Object({ connector: oneOf(['twilio', 'whatsapp', 'messenger', 'rbm'] as const) })
const Address = Type.String({ minLength: 1, maxLength: 110, pattern: '^\\+?[0-9A-Za-z_-]+(@rbm\\.goog)?$' })
const Signature = oneOf(['valid', 'invalid', 'missing'] as const)
/** How long a reader of a phone's thread may wait for its next message. */
const MAX_WAIT_SECONDS = 25

const random = (bytes: number) => randomBytes(bytes).toString('hex')
type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'config'>

/** A webhook's body as a provider posts it: a form (Twilio), JSON (Meta) or RBM's signed event in its envelope. */
type WebhookBody = { form: URLSearchParams } | { json: unknown } | { rbm: { envelope: unknown; event: Buffer } }

/** The simulator's routes stay out of the API document. */
const hidden = { hide: true, tags: ['dev'] }

/** What the provider would post for a customer's message: its id and its webhook body, in the provider's format. */
function inboundWebhook(
  connector: WebhookConnectorKind,
  channel: ChannelConfig,
  sent: { from: string; to: string; text: string; providerMessageId?: string | undefined },
  now: number,
): { providerMessageId: string; body: WebhookBody } {
  const { from, to, text } = sent
  let providerMessageId: string
  let body: WebhookBody
  if (connector === 'twilio') {
    providerMessageId = sent.providerMessageId ?? `SM${random(16)}`
    body = {
      form: new URLSearchParams({
        MessageSid: providerMessageId,
        SmsSid: providerMessageId,
        AccountSid: channel.settings.accountSid ?? '',
        From: from,
        To: to,
        Body: text,
        NumMedia: '0',
        SmsStatus: 'received',
      }),
    }
  } else if (connector === 'whatsapp') {
    providerMessageId = sent.providerMessageId ?? `wamid.${random(16)}`
    const message = { from, id: providerMessageId, timestamp: String(Math.floor(now / 1000)), type: 'text' }
    body = {
      json: whatsAppWebhook(to, {
        contacts: [{ wa_id: from, profile: { name: 'Simulated customer' } }],
        messages: [{ ...message, text: { body: text } }],
      }),
    }
  } else if (connector === 'rbm') {
    providerMessageId = sent.providerMessageId ?? `Ms${random(16)}`
    body = rbmWebhook({ senderPhoneNumber: from, agentId: to, messageId: providerMessageId, sendTime: iso(now), text })
  } else {
    providerMessageId = sent.providerMessageId ?? `m_${random(16)}`
    body = {
      json: {
        object: 'page',
        entry: [
          {
            id: to,
            time: now,
            messaging: [
              {
                sender: { id: from },
                recipient: { id: to },
                timestamp: now,
                message: { mid: providerMessageId, text },
              },
            ],
          },
        ],
      },
    }
  }
  return { providerMessageId, body }
}

/** The channel that receives at this address (the number or page the simulated customer writes to). */
async function channelAt(ctx: Ctx, connector: WebhookConnectorKind, address: string): Promise<ChannelConfig> {
  const channel = await findChannelByAddress(ctx, connector, address)
  if (!channel) throw new Problem('channels/not-configured', 'no channel has this receiving address')
  return channel
}

/** Posts a webhook the way the provider would: its wire format, signed with the channel's secret. */
async function deliver(
  urls: SimulatorUrls,
  channel: ChannelConfig,
  body: WebhookBody,
  signature: 'valid' | 'invalid' | 'missing',
): Promise<number> {
  const path = `/v1/channels/${channel.connector}/webhook`
  const headers: Record<string, string> = {}
  let raw: string
  if ('form' in body) {
    raw = body.form.toString()
    headers['content-type'] = 'application/x-www-form-urlencoded'
    const token = signature === 'valid' ? (channel.secrets.authToken ?? '') : 'not-the-auth-token'
    if (signature !== 'missing') {
      headers['x-twilio-signature'] = computeTwilioSignature(token, `${urls.publicUrl()}${path}`, body.form)
    }
  } else if ('rbm' in body) {
    raw = JSON.stringify(body.rbm.envelope)
    headers['content-type'] = 'application/json'
    const token = signature === 'valid' ? (channel.secrets.clientToken ?? '') : 'not-the-client-token'
    if (signature !== 'missing') {
      headers['x-goog-signature'] = createHmac('sha512', token).update(body.rbm.event).digest('base64')
    }
  } else {
    raw = JSON.stringify(body.json)
    headers['content-type'] = 'application/json'
    const secret = signature === 'valid' ? (channel.secrets.appSecret ?? '') : 'not-the-app-secret'
    if (signature !== 'missing') {
      headers['x-hub-signature-256'] = `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`
    }
  }
  const response = await fetch(`${urls.listeningUrl()}${path}`, { method: 'POST', headers, body: raw })
  await response.body?.cancel()
  return response.status
}

export async function channelSimulatorRoutes(app: App, ctx: Ctx, urls: SimulatorUrls): Promise<void> {
  const phones = new PhoneLog()
  // A reader waiting for a phone's next message must not hold the server open.
  app.addHook('preClose', async () => phones.release())
  await phoneMessageRoutes(app, ctx, urls, phones)
  await phoneReceiptRoutes(app, ctx, urls, phones)
  await phoneInboxRoutes(app, ctx, phones)
  await app.register(async (providers) => providerRoutes(providers, ctx, phones))
}

/** The simulated customer writes: the provider's webhook, signed as the provider signs it. */
async function phoneMessageRoutes(app: App, ctx: Ctx, urls: SimulatorUrls, phones: PhoneLog): Promise<void> {
  app.post(
    '/dev/simulator/phone/:connector/messages',
    {
      // Dev mode only: the channel simulator (the customer's phone, and the providers' send APIs).
      config: { access: allow.anyone },
      schema: {
        ...hidden,
        params: ConnectorParam,
        body: Type.Object(
          {
            from: Address,
            to: Address,
            text: Type.String({ maxLength: 4096 }),
            providerMessageId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
            signature: Type.Optional(Signature),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const { connector } = request.params
      const { from, to, text } = request.body
      const channel = await channelAt(ctx, connector, to)
      const now = Date.now()
      const { providerMessageId, body } = inboundWebhook(connector, channel, request.body, now)
      // Logged before the webhook: what the bank answers while handling it (a DLP notice) comes after it.
      const logged = phones.record({
        connector,
        direction: 'from-phone',
        phone: from,
        providerMessageId,
        text,
        link: null,
        at: new Date(now).toISOString(),
        webhookStatus: null,
      })
      const status = await deliver(urls, channel, body, request.body.signature ?? 'valid')
      logged.webhookStatus = status
      return { status, providerMessageId }
    },
  )
}

/** Delivery and read receipts for what the bank sent, as the provider reports them. */
async function phoneReceiptRoutes(app: App, ctx: Ctx, urls: SimulatorUrls, phones: PhoneLog): Promise<void> {
  app.post(
    '/dev/simulator/phone/:connector/receipts',
    {
      config: { access: allow.anyone },
      schema: {
        ...hidden,
        params: ConnectorParam,
        body: Type.Object(
          {
            to: Address,
            providerMessageId: Type.String({ minLength: 1, maxLength: 64 }),
            status: oneOf(['sent', 'delivered', 'read', 'failed'] as const),
            signature: Type.Optional(Signature),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const { connector } = request.params
      const { to, providerMessageId, status } = request.body
      const channel = await channelAt(ctx, connector, to)
      const recipient = phones.find(connector, providerMessageId)?.phone ?? 'unknown'
      const now = Date.now()
      let body: WebhookBody
      if (connector === 'twilio') {
        const form = new URLSearchParams({
          MessageSid: providerMessageId,
          MessageStatus: status === 'failed' ? 'undelivered' : status,
          AccountSid: channel.settings.accountSid ?? '',
          From: to,
          To: recipient,
        })
        if (status === 'failed') form.set('ErrorCode', '30003')
        body = { form }
      } else if (connector === 'whatsapp') {
        const entry = {
          id: providerMessageId,
          status,
          timestamp: String(Math.floor(now / 1000)),
          recipient_id: recipient,
        }
        body = {
          json: whatsAppWebhook(to, {
            statuses: [status === 'failed' ? { ...entry, errors: [{ code: 131026 }] } : entry],
          }),
        }
      } else if (connector === 'rbm') {
        // RBM reports no failed deliveries by webhook: a send to a phone that cannot get RCS fails when it is made.
        const eventType = status === 'read' ? 'READ' : 'DELIVERED'
        const event = { senderPhoneNumber: recipient, agentId: to, eventId: `Ev${random(8)}`, sendTime: iso(now) }
        body = rbmWebhook({ ...event, eventType, messageId: providerMessageId })
      } else {
        const event =
          status === 'read' ? { read: { watermark: now } } : { delivery: { mids: [providerMessageId], watermark: now } }
        body = {
          json: {
            object: 'page',
            entry: [
              {
                id: to,
                time: now,
                messaging: [{ sender: { id: recipient }, recipient: { id: to }, timestamp: now, ...event }],
              },
            ],
          },
        }
      }
      return { status: await deliver(urls, channel, body, request.body.signature ?? 'valid') }
    },
  )
}

/** The channels to write to, and what the simulated phone received. */
async function phoneInboxRoutes(app: App, ctx: Ctx, phones: PhoneLog): Promise<void> {
  app.get('/dev/simulator/channels', { config: { access: allow.anyone }, schema: hidden }, async () => ({
    channels: await listChannelAddresses(ctx),
  }))

  app.get(
    '/dev/simulator/phone/:connector/inbox',
    {
      config: { access: allow.anyone },
      schema: {
        ...hidden,
        params: ConnectorParam,
        querystring: Type.Object({ address: Address }, { additionalProperties: false }),
      },
    },
    async (request) => ({
      messages: phones
        .list(request.params.connector, request.query.address, 0)
        .filter((m) => m.direction === 'to-phone')
        .map((m) => ({ providerMessageId: m.providerMessageId, to: m.phone, text: m.text, link: m.link, at: m.at })),
    }),
  )

  app.get(
    '/dev/simulator/phone/:connector/thread',
    {
      config: { access: allow.anyone },
      schema: {
        ...hidden,
        params: ConnectorParam,
        querystring: Type.Object(
          {
            address: Address,
            after: Type.Optional(Type.Integer({ minimum: 0 })),
            waitSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_WAIT_SECONDS })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const { address, after = 0, waitSeconds = 0 } = request.query
      return { messages: await phones.next(request.params.connector, address, after, waitSeconds * 1000) }
    },
  )
}

/** What a provider's fake send API hands the phone log: one message to a phone. */
type RecordSent = (
  connector: WebhookConnectorKind,
  message: { providerMessageId: string; to: string; text: string; link: PhoneMessage['link'] },
) => void

const authorized = (header: string | undefined) => typeof header === 'string' && /^(Basic|Bearer) \S+$/.test(header)

/** The providers' send APIs, as the connectors call them: Twilio's form-encoded Messages API, then Meta's and Google's. */
async function providerRoutes(app: App, ctx: Ctx, phones: PhoneLog): Promise<void> {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser(
    /^application\/(json|x-www-form-urlencoded)\b/,
    { parseAs: 'string', bodyLimit: 256 * 1024 },
    (_request, body, done) => done(null, body),
  )
  const record: RecordSent = (connector, message) => {
    const { to, ...rest } = message
    phones.record({
      connector,
      direction: 'to-phone',
      phone: to,
      ...rest,
      at: new Date().toISOString(),
      webhookStatus: null,
    })
  }
  app.post(
    '/dev/simulator/provider/twilio/2010-04-01/Accounts/:accountSid/Messages.json',
    { config: { access: allow.anyone }, schema: hidden },
    async (request, reply) => {
      if (!authorized(request.headers.authorization)) return reply.status(401).send({ code: 20003 })
      const form = new URLSearchParams(String(request.body ?? ''))
      const to = form.get('To')
      if (!to) return reply.status(400).send({ code: 21604 })
      const sid = `SM${random(16)}`
      record('twilio', { providerMessageId: sid, to, text: form.get('Body') ?? '', link: null })
      return reply.status(201).send({ sid, status: 'queued' })
    },
  )

  metaProviderRoutes(app, record)
  rbmProviderRoutes(app, ctx, record)
}

/**
 * What the phone shows of a template message: the approved template's name and the values filling its body (the body's
 * fixed words are registered at Meta, not sent).
 */
function templateText(
  template: { name?: unknown; components?: { type?: string; parameters?: { text?: unknown }[] }[] } | undefined,
) {
  if (!template) return undefined
  const body = template.components?.find((c) => c.type === 'body')?.parameters?.map((p) => String(p.text)) ?? []
  return body.length > 0 ? `${String(template.name)}: ${body.join(' · ')}` : String(template.name)
}

/** Meta's Graph API for WhatsApp (text, interactive and template messages) and Messenger (text and button templates). */
function metaProviderRoutes(app: App, record: RecordSent): void {
  app.post(
    '/dev/simulator/provider/whatsapp/:version/:phoneNumberId/messages',
    { config: { access: allow.anyone }, schema: hidden },
    async (request, reply) => {
      if (!authorized(request.headers.authorization)) return reply.status(401).send({ error: { code: 190 } })
      const body = JSON.parse(String(request.body ?? '{}'))
      const id = `wamid.${random(16)}`
      const interactive = body.interactive
      // A template's URL button shows its dynamic part only: the fixed part is registered at Meta.
      const button = body.template?.components?.find((c: { type?: string }) => c.type === 'button')
      const buttonLink = button
        ? { url: String(button.parameters?.[0]?.text), label: String(body.template.name) }
        : null
      record('whatsapp', {
        providerMessageId: id,
        to: String(body.to),
        text: String(interactive ? interactive.body?.text : (body.text?.body ?? templateText(body.template) ?? '')),
        link: interactive
          ? { url: interactive.action.parameters.url, label: interactive.action.parameters.display_text }
          : buttonLink,
      })
      return { messaging_product: 'whatsapp', contacts: [{ input: body.to, wa_id: body.to }], messages: [{ id }] }
    },
  )

  app.post(
    '/dev/simulator/provider/messenger/:version/me/messages',
    { config: { access: allow.anyone }, schema: hidden },
    async (request, reply) => {
      if (!authorized(request.headers.authorization)) return reply.status(401).send({ error: { code: 190 } })
      const body = JSON.parse(String(request.body ?? '{}'))
      const id = `m_${random(16)}`
      const template = body.message?.attachment?.payload
      const button = template?.buttons?.[0]
      record('messenger', {
        providerMessageId: id,
        to: String(body.recipient?.id),
        text: String(template ? template.text : (body.message?.text ?? '')),
        link: button ? { url: button.url, label: button.title } : null,
      })
      return { recipient_id: body.recipient?.id, message_id: id }
    },
  )
}

/**
 * Google's RBM agentMessages API: a text, or a rich card whose suggestion opens a URL. As Google takes only an access
 * token of the agent's own service account, this takes only the access token configured for the agent the request
 * names (each tenant's own, generated when the simulated channels are set up), compared in constant time.
 */
function rbmProviderRoutes(app: App, ctx: Ctx, record: RecordSent): void {
  app.post(
    '/dev/simulator/provider/rbm/v1/phones/:phone/agentMessages',
    { config: { access: allow.anyone }, schema: hidden },
    async (request, reply) => {
      const query = new URLSearchParams(request.url.split('?')[1] ?? '')
      const agentId = query.get('agentId')
      const channel = agentId ? await findChannelByAddress(ctx, 'rbm', agentId) : undefined
      const token = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1]
      const expected = channel?.secrets.accessToken
      if (!token || !expected || !constantTimeEqual(token, expected)) {
        return reply.status(401).send({ error: { code: 401, status: 'UNAUTHENTICATED' } })
      }
      const { phone } = request.params as { phone: string }
      const messageId = query.get('messageId')
      if (!messageId) return reply.status(400).send({ error: { code: 400, status: 'INVALID_ARGUMENT' } })
      const content = JSON.parse(String(request.body ?? '{}')).contentMessage
      const card = content?.richCard?.standaloneCard?.cardContent
      const open = card?.suggestions?.[0]?.action
      record('rbm', {
        providerMessageId: messageId,
        to: phone,
        text: String(card ? card.description : (content?.text ?? '')),
        link: open?.openUrlAction ? { url: open.openUrlAction.url, label: open.text } : null,
      })
      return { name: `phones/${phone}/agentMessages/${messageId}`, sendTime: iso(Date.now()) }
    },
  )
}

/** An RBM webhook as Google posts it: the event's JSON, base64, in a Pub/Sub push envelope; its bytes are signed. */
function rbmWebhook(event: Record<string, unknown>): WebhookBody {
  const bytes = Buffer.from(JSON.stringify(event))
  const envelope = {
    message: { data: bytes.toString('base64'), messageId: random(8), publishTime: iso(Date.now()) },
    subscription: 'projects/simulated/subscriptions/rbm',
  }
  return { rbm: { envelope, event: bytes } }
}

const iso = (ms: number) => new Date(ms).toISOString()

/** A WhatsApp Cloud API webhook body as Meta sends it, for the simulated number `to`, carrying `value`'s fields. */
function whatsAppWebhook(to: string, value: Record<string, unknown>) {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: 'simulated-waba',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: 'simulated', phone_number_id: to },
              ...value,
            },
          },
        ],
      },
    ],
  }
}
