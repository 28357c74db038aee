import type { ServerContext } from '../platform/context.ts'
import type { ConnectorEnvironment } from './channel-config.ts'
import { GoogleAccessTokens } from './connectors/google-access-tokens.ts'
import { processWebhookEvents } from './inbound.ts'
import type { ChannelDeps } from './public-messages.ts'
import { SmppLinks } from './smpp-links.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'bus' | 'config' | 'log'>

/**
 * Builds what channels work with, whole: the SMPP links receive through the same inbound path as webhooks, and every
 * send on an SMPP channel goes out on this server's link. Nothing is added to it afterwards.
 */
export function openChannels(
  ctx: Ctx,
  parts: Omit<ChannelDeps, 'smppLinks' | 'env'> & { env: Omit<ConnectorEnvironment, 'smpp' | 'googleTokens'> },
): ChannelDeps {
  const smppLinks = new SmppLinks(ctx, {
    transport: parts.env.transport,
    receive: (channel, events) => processWebhookEvents(ctx, deps, channel, events),
  })
  const deps: ChannelDeps = {
    ...parts,
    env: {
      ...parts.env,
      smpp: (channel) => smppLinks.connector(channel),
      googleTokens: new GoogleAccessTokens(parts.env.transport),
    },
    smppLinks,
  }
  return deps
}
