import type { CustomerChannel, PublicChannelConnector } from '@strongroom/sdk/protocol'
import { recordAudit } from '../audit/events.ts'
import { addMemberIn, canAccessConversation } from '../conversations/conversations.ts'
import { findCustomer } from '../identity/customers.ts'
import type { ServerContext } from '../platform/context.ts'
import { actorOf, type Principal, principalMember } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { type ChannelConfig, findTenantChannel, tenantChannelSettings } from './channel-config.ts'
import {
  addressForPhoneNumber,
  type ChannelIdentity,
  findIdentityByAddress,
  identityForSender,
  linkedIdentityOn,
  linkIdentityCustomer,
} from './identities.ts'
import { messagingWindow } from './messaging-window.ts'
import { loadWhatsAppTemplates } from './whatsapp-templates.ts'

type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'bus' | 'config'>

const CONNECTOR_ORDER: readonly PublicChannelConnector[] = ['twilio', 'smpp', 'whatsapp', 'messenger', 'rbm']

/** Where the bank can write to a customer first on one channel: the identity they have there, or a new address. */
type Reach =
  | { kind: 'known'; identity: ChannelIdentity }
  | { kind: 'new'; address: string }
  | { kind: 'unreachable'; reason: string }

const NO_PHONE = 'no phone number on file for this customer'
const NO_MESSENGER =
  'the customer has not written to the bank on Messenger (or that conversation is not linked to them): Messenger ' +
  'gives a page no way to write first'
const ANOTHER_CUSTOMER = "this number's conversation on the channel is linked to another customer"
const ANOTHER_AGENT =
  "the customer's conversation on this channel is another agent's: ask a supervisor to assign it to you"

async function reachOn(
  ctx: Ctx,
  principal: Principal,
  customer: { id: string; phoneNumber?: string | undefined },
  channel: Pick<ChannelConfig, 'tenantId' | 'connector'>,
): Promise<Reach> {
  let identity: ChannelIdentity | undefined
  if (channel.connector === 'messenger') {
    identity = await linkedIdentityOn(ctx, principal.tenantId, customer.id, channel.connector)
    if (!identity) return { kind: 'unreachable', reason: NO_MESSENGER }
  } else {
    const address = customer.phoneNumber && addressForPhoneNumber(channel.connector, customer.phoneNumber)
    if (!address) return { kind: 'unreachable', reason: NO_PHONE }
    identity = await findIdentityByAddress(ctx, channel, address)
    if (!identity) return { kind: 'new', address }
  }
  if (identity.customerId !== null && identity.customerId !== customer.id) {
    return { kind: 'unreachable', reason: ANOTHER_CUSTOMER }
  }
  // A supervisor (conversations:all) sees, and may join, any; an agent only their own.
  return (await canAccessConversation(ctx, principal, identity.conversationId))
    ? { kind: 'known', identity }
    : { kind: 'unreachable', reason: ANOTHER_AGENT }
}

/**
 * The tenant's public channels as ways to write to one customer first: on each, the conversation they already have
 * there (when the caller may see it), the messaging window the bank's next message would fall in, or why the bank
 * cannot write there (no number on file, no Messenger conversation yet, another agent's conversation).
 */
export async function customerPublicChannels(
  ctx: Ctx,
  principal: Principal,
  customerId: string,
): Promise<CustomerChannel[]> {
  const customer = await findCustomer(ctx, principal.tenantId, customerId)
  if (!customer) throw new Problem('request/not-found', 'no such customer')
  const templates = (await loadWhatsAppTemplates(ctx, principal.tenantId)).templates.map((t) => t.purpose)
  const channels: CustomerChannel[] = []
  for (const [connector, settings] of await tenantChannelSettings(ctx, principal.tenantId)) {
    const reach = await reachOn(ctx, principal, customer, { tenantId: principal.tenantId, connector })
    const identity = reach.kind === 'known' ? reach.identity : undefined
    channels.push({
      connector,
      conversationId: identity?.conversationId ?? null,
      window: messagingWindow(connector, identity?.lastInboundAt ?? null, {
        humanAgentTag: settings.humanAgentTag === true,
        templates: templates.length > 0,
      }),
      templates: connector === 'whatsapp' ? templates : [],
      unreachable: reach.kind === 'unreachable' ? reach.reason : null,
    })
  }
  return channels.sort((a, b) => CONNECTOR_ORDER.indexOf(a.connector) - CONNECTOR_ORDER.indexOf(b.connector))
}

/**
 * The customer's public conversation on a channel, for an agent writing first: the one their number (or Messenger
 * id) already has, or a new one assigned to the caller. The caller joins it (a supervisor may join another agent's;
 * an agent may not). Audited when a conversation is made or joined. Idempotent: the same customer and channel always
 * give the same conversation. None is made where nothing of `purpose` could go out (WhatsApp without its template).
 */
export async function reachCustomer(
  ctx: Ctx,
  principal: Principal,
  customerId: string,
  connector: PublicChannelConnector,
  /** What will be sent: a conversation is not made where the channel's window lets nothing of it go out. */
  purpose: 'message' | 'pivot',
): Promise<ChannelIdentity> {
  const customer = await findCustomer(ctx, principal.tenantId, customerId)
  if (!customer) throw new Problem('request/not-found', 'no such customer')
  const channel = await findTenantChannel(ctx, principal.tenantId, connector)
  if (!channel) throw new Problem('channels/not-configured')
  const member = principalMember(principal)
  const reach = await reachOn(ctx, principal, customer, channel)
  if (reach.kind === 'unreachable') throw new Problem('channels/customer-unreachable', reach.reason)
  let identity: ChannelIdentity
  let created = false
  if (reach.kind === 'known') identity = reach.identity
  else {
    const registry = await loadWhatsAppTemplates(ctx, principal.tenantId)
    const window = messagingWindow(connector, null, {
      humanAgentTag: channel.settings.humanAgentTag === true,
      templates: registry.templates.some((t) => t.purpose === purpose),
    })
    if (window.kind === 'closed') throw new Problem('channels/outside-service-window', window.reason)
    const made = await identityForSender(ctx, channel, reach.address, member.id)
    identity = made.identity
    created = made.created
    // Two customers sharing the number leave it unlinked: the agent chose this one.
    if (identity.customerId === null) {
      await linkIdentityCustomer(ctx, identity, customer.id)
      identity = { ...identity, customerId: customer.id }
    }
    if (identity.customerId !== customer.id) throw new Problem('channels/customer-unreachable', ANOTHER_CUSTOMER)
  }
  const target = identity
  const joined = await ctx.db.transaction().execute(async (trx) => {
    const added = await addMemberIn(trx, principal.tenantId, target.conversationId, member)
    if (created || added.added) {
      await recordAudit(trx, {
        tenantId: principal.tenantId,
        actor: actorOf(principal),
        action: 'channels.outreach.start',
        target: { kind: 'conversation', id: target.conversationId },
        outcome: 'success',
        details: { customerId: customer.id, channel: connector, created },
      })
    }
    return added
  })
  joined.announce(ctx)
  return identity
}
