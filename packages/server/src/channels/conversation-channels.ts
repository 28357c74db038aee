import type { ConversationChannel } from '@strongroom/sdk/protocol'
import { accessibleConversationIds } from '../conversations/conversations.ts'
import type { ServerContext } from '../platform/context.ts'
import type { Principal } from '../platform/http/principal.ts'
import { tenantChannelSettings } from './channel-config.ts'
import { messagingWindow } from './messaging-window.ts'
import { loadWhatsAppTemplates } from './whatsapp-templates.ts'

/**
 * Which of these conversations belong to a public channel, for a console's inbox: the conversation a customer's
 * address has on SMS, WhatsApp or Messenger, and the secure conversation a pivot moved it to. Only conversations the
 * caller may see are named; the rest, and conversations on no public channel, are left out.
 */
export async function conversationChannels(
  ctx: Pick<ServerContext, 'db'>,
  principal: Principal,
  conversationIds: readonly string[],
): Promise<ConversationChannel[]> {
  const visible = [...(await accessibleConversationIds(ctx, principal, conversationIds))]
  if (visible.length === 0) return []
  const identities = await ctx.db
    .selectFrom('channel_identities')
    .select(['connector', 'customer_id', 'conversation_id', 'secure_conversation_id', 'risk_flags', 'last_inbound_at'])
    .where('tenant_id', '=', principal.tenantId)
    .where((eb) => eb.or([eb('conversation_id', 'in', visible), eb('secure_conversation_id', 'in', visible)]))
    .execute()
  const settings = await tenantChannelSettings(ctx, principal.tenantId)
  const templates = (await loadWhatsAppTemplates(ctx, principal.tenantId)).templates.length > 0
  const found: ConversationChannel[] = []
  const shown = new Set(visible)
  for (const identity of identities) {
    const common = {
      connector: identity.connector,
      verifiedSender: identity.connector === 'rbm' ? (settings.get('rbm')?.verifiedSender ?? null) : null,
      window: messagingWindow(
        identity.connector,
        identity.last_inbound_at === null ? null : new Date(identity.last_inbound_at),
        { humanAgentTag: settings.get(identity.connector)?.humanAgentTag === true, templates },
      ),
      customerLinked: identity.customer_id !== null,
      risk: JSON.parse(identity.risk_flags) as string[],
      publicConversationId: identity.conversation_id,
      secureConversationId: identity.secure_conversation_id,
    }
    if (shown.has(identity.conversation_id)) {
      found.push({ conversationId: identity.conversation_id, kind: 'public', ...common })
    }
    if (identity.secure_conversation_id !== null && shown.has(identity.secure_conversation_id)) {
      found.push({ conversationId: identity.secure_conversation_id, kind: 'secure', ...common })
    }
  }
  return found
}
