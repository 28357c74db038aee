import type { ConnectorKind } from './connectors/connector.ts'
import { HUMAN_AGENT_WINDOW_MS } from './connectors/messenger.ts'
import { SERVICE_WINDOW_MS } from './connectors/whatsapp.ts'

/**
 * Which of the channel's messaging windows applies to the bank's next message, for the console and for the refusal:
 * `open` (free text until `closesAt`), `human-agent` (Messenger, an agent's reply tagged HUMAN_AGENT until
 * `closesAt`), `template` (WhatsApp, only the bank's approved templates), `closed` (nothing may be sent until the
 * customer writes), or `none` (SMS and RCS have no window).
 */
export interface MessagingWindow {
  kind: 'open' | 'human-agent' | 'template' | 'closed' | 'none'
  closesAt: string | null
  /** Why, in words for the agent. */
  reason: string
}

export function messagingWindow(
  connector: ConnectorKind,
  lastInboundAt: Date | null,
  options: { humanAgentTag: boolean; templates: boolean },
  now = Date.now(),
): MessagingWindow {
  if (connector !== 'whatsapp' && connector !== 'messenger') {
    return { kind: 'none', closesAt: null, reason: 'this channel has no messaging window' }
  }
  const name = connector === 'whatsapp' ? 'WhatsApp' : 'Messenger'
  // Written so that an invalid date (NaN) counts as outside every window.
  const since = lastInboundAt === null ? Number.NaN : now - lastInboundAt.getTime()
  const at = (ms: number) => new Date((lastInboundAt as Date).getTime() + ms).toISOString()
  if (since < SERVICE_WINDOW_MS) {
    return {
      kind: 'open',
      closesAt: at(SERVICE_WINDOW_MS),
      reason: `the customer wrote on ${name} in the last 24 hours: free text is allowed`,
    }
  }
  if (connector === 'whatsapp') {
    return options.templates
      ? { kind: 'template', closesAt: null, reason: 'more than 24 hours since the customer wrote: templates only' }
      : {
          kind: 'closed',
          closesAt: null,
          reason: 'more than 24 hours since the customer wrote on WhatsApp, and no template is registered for this',
        }
  }
  if (options.humanAgentTag && since < HUMAN_AGENT_WINDOW_MS) {
    return {
      kind: 'human-agent',
      closesAt: at(HUMAN_AGENT_WINDOW_MS),
      reason: 'more than 24 hours since the customer wrote: an agent may answer with the HUMAN_AGENT tag for 7 days',
    }
  }
  return {
    kind: 'closed',
    closesAt: null,
    reason: options.humanAgentTag
      ? 'more than 7 days since the customer wrote on Messenger: nothing may be sent until they write again'
      : 'more than 24 hours since the customer wrote on Messenger, and the page has no HUMAN_AGENT permission',
  }
}
