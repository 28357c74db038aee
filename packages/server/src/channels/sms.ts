import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { connectorFor, findTenantChannel } from './channel-config.ts'
import { ConnectorError, ProviderRejectedError } from './connectors/errors.ts'
import type { ChannelDeps } from './public-messages.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'config' | 'log'>

/** The channel a tenant's SMS go out on: Twilio when it has one, else SMPP; none when it has neither. */
export async function smsChannelOf(ctx: Ctx, tenantId: string) {
  return (await findTenantChannel(ctx, tenantId, 'twilio')) ?? (await findTenantChannel(ctx, tenantId, 'smpp'))
}

/**
 * Sends one SMS for a tenant through its SMS channel (Twilio, else SMPP), outside any conversation: for codes and
 * confirmations that other capabilities send. Nothing is stored (the text carries a secret) and nothing of the text is
 * logged; the idempotency key lets Twilio drop a retried send (SMPP has none, so an unanswered submit is not retried).
 */
export async function sendTransactionalSms(
  ctx: Ctx,
  deps: ChannelDeps,
  input: { tenantId: string; to: string; text: string; idempotencyKey: string },
): Promise<{ providerMessageId: string }> {
  const channel = await smsChannelOf(ctx, input.tenantId)
  if (!channel) throw new Problem('channels/not-configured')
  try {
    return await connectorFor(channel, deps.env).send({
      to: input.to,
      text: input.text,
      idempotencyKey: input.idempotencyKey,
    })
  } catch (error) {
    ctx.log.warn(
      { connector: channel.connector, code: (error as { code?: string }).code },
      'transactional SMS not sent',
    )
    if (error instanceof ProviderRejectedError) throw new Problem('channels/provider-rejected', error.answer)
    if (error instanceof ConnectorError) throw new Problem('channels/provider-unavailable')
    throw new Problem('channels/provider-unavailable')
  }
}

/** An SMS a customer sent to the tenant's number, as reply handlers see it (after it was stored as usual). */
export interface InboundSmsReply {
  tenantId: string
  /** The sender's number, E.164. */
  from: string
  text: string
  receivedAt: Date
}

/** Handles replies to what another capability sent; it must ignore a reply that is not for it. */
export type InboundSmsReplyHandler = (reply: InboundSmsReply) => Promise<void>

/**
 * Lets another capability (consent's SMS yes/no) see inbound SMS without reading channels' tables: its handler is in
 * `ChannelDeps.smsReplyHandlers` from the start. Every inbound SMS is first stored as an ordinary public message;
 * handlers then run once per provider message (never for a retried webhook), and a handler's failure is logged, not
 * retried.
 */
export async function dispatchInboundSmsReply(
  ctx: Pick<ServerContext, 'log'>,
  deps: ChannelDeps,
  reply: InboundSmsReply,
): Promise<void> {
  for (const handler of deps.smsReplyHandlers) {
    try {
      await handler(reply)
    } catch (error) {
      const kind = error instanceof Problem ? error.kind : 'internal'
      ctx.log.warn({ reason: kind }, 'SMS reply handler failed')
    }
  }
}
