import type { WhatsAppTemplates } from '@strongroom/sdk/protocol'
import { recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import type { Actor } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { loadTenantPolicy, saveTenantPolicy } from '../tenancy/policies.ts'
import type { OutboundTemplate } from './connectors/connector.ts'

const POLICY_NAME = 'whatsapp-templates'

export async function loadWhatsAppTemplates(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
): Promise<WhatsAppTemplates> {
  return (await loadTenantPolicy<WhatsAppTemplates>(ctx, tenantId, POLICY_NAME)) ?? { templates: [] }
}

/** One template a purpose, a pivot template with its URL button; replaces the registry, audited by names only. */
export async function saveWhatsAppTemplates(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  registry: WhatsAppTemplates,
  actor: Actor,
): Promise<WhatsAppTemplates> {
  const purposes = registry.templates.map((template) => template.purpose)
  if (new Set(purposes).size !== purposes.length) throw new Problem('request/invalid', 'one template per purpose')
  if (registry.templates.some((template) => template.purpose === 'pivot' && !template.urlButtonBase)) {
    throw new Problem('request/invalid', 'a pivot template needs its urlButtonBase')
  }
  await ctx.db.transaction().execute(async (trx) => {
    await saveTenantPolicy({ db: trx }, tenantId, POLICY_NAME, registry, `${actor.kind}:${actor.id}`)
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'policy.whatsapp-templates.update',
      outcome: 'success',
      details: { templates: registry.templates.map((template) => `${template.purpose}:${template.name}`) },
    })
  })
  return registry
}

/**
 * The template a WhatsApp message outside the window goes out as, or undefined when the bank registered none for it.
 * A pivot link that does not start with the template's URL button base cannot be carried by it: refused.
 */
export function templateFor(
  registry: WhatsAppTemplates,
  message: { text: string; link?: { url: string } | undefined },
  linkDomain: string,
): OutboundTemplate | undefined {
  const template = registry.templates.find((t) => t.purpose === (message.link ? 'pivot' : 'message'))
  if (!template) return undefined
  const parameters = template.parameters.map((parameter) => (parameter === 'text' ? message.text : linkDomain))
  const chosen: OutboundTemplate = { name: template.name, language: template.language, parameters }
  if (!message.link || !template.urlButtonBase) return chosen
  if (!message.link.url.startsWith(template.urlButtonBase)) {
    throw new Problem('channels/outside-service-window', "the pivot template's URL button does not lead to this link")
  }
  return { ...chosen, urlButtonParameter: message.link.url.slice(template.urlButtonBase.length) }
}
