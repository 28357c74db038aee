import type { LinkPolicy } from '@strongroom/sdk/protocol'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { loadTenantPolicy, saveTenantPolicy } from '../tenancy/policies.ts'
import { analyzeLinks, registrableDomain } from './link-safety.ts'

const POLICY_NAME = 'links'

export async function loadLinkPolicy(ctx: Pick<ServerContext, 'db'>, tenantId: string): Promise<LinkPolicy> {
  return (await loadTenantPolicy<LinkPolicy>(ctx, tenantId, POLICY_NAME)) ?? { domains: [], senderIds: [] }
}

/** Domains are stored as registrable domains in lower case (Unicode, punycode decoded); anything else is refused. */
export async function saveLinkPolicy(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  policy: LinkPolicy,
  actor: Actor,
): Promise<LinkPolicy> {
  const domains = policy.domains.map((domain) => {
    // A subdomain given stands for its registrable domain, whose subdomains all count as the bank's.
    const registrable = registrableDomain(domain)
    if (!registrable) throw new Problem('request/invalid', `"${domain}" is not a registrable domain`)
    return registrable
  })
  const saved: LinkPolicy = { domains: [...new Set(domains)], senderIds: policy.senderIds }
  if (policy.securePlace) saved.securePlace = policy.securePlace
  await ctx.db.transaction().execute(async (trx) => {
    await saveTenantPolicy({ db: trx }, tenantId, POLICY_NAME, saved, `${actor.kind}:${actor.id}`)
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'policy.links.update',
      outcome: 'success',
      details: { domains: saved.domains, senderIds: saved.senderIds.length, securePlace: saved.securePlace ?? null },
    })
  })
  return saved
}

/** How the bank's texts name the place a secure link opens, by its link policy: "on our secure page" or "in our app". */
export async function securePlaceName(ctx: Pick<ServerContext, 'db'>, tenantId: string): Promise<string> {
  return (await loadLinkPolicy(ctx, tenantId)).securePlace === 'app' ? 'in our app' : 'on our secure page'
}

export type RiskFlag = 'lookalike-link' | 'link-shortener' | 'spoofed-sender'

/** A sender ID or number compared as people read it: case, spaces and punctuation aside. */
const senderKey = (value: string) => value.replace(/[^0-9a-z]/gi, '').toLowerCase()

/**
 * What an inbound message risks: links to a lookalike of the bank's domains or through a shortener, and a sender that
 * claims to be the bank (one of its sender IDs, or one of its own numbers).
 */
export function assessInbound(
  text: string,
  from: string,
  policy: LinkPolicy,
  bankAddresses: readonly string[],
): { flags: RiskFlag[]; hosts: string[] } {
  const links = analyzeLinks(text, policy.domains)
  const flags: RiskFlag[] = []
  if (links.some((link) => link.verdict === 'lookalike')) flags.push('lookalike-link')
  if (links.some((link) => link.verdict === 'shortener')) flags.push('link-shortener')
  const own = new Set([...policy.senderIds, ...bankAddresses].map(senderKey))
  if (own.has(senderKey(from))) flags.push('spoofed-sender')
  const hosts = links.filter((link) => link.verdict === 'lookalike' || link.verdict === 'shortener')
  return { flags, hosts: hosts.map((link) => link.host) }
}

/**
 * Every link the bank sends on a public channel (in the text, and the call-to-action's URL) must be on its registered
 * domains or on the server's own public URL's domain (where pivot links point), so that customers can be told which
 * domain the bank's links use and trust nothing else.
 */
export function requireAllowedLinks(
  policy: LinkPolicy,
  publicUrl: string,
  text: string,
  linkUrl: string | undefined,
): void {
  const server = new URL(publicUrl).hostname
  const own = registrableDomain(server)
  const allowed = own ? [...policy.domains, own] : policy.domains
  const links = analyzeLinks(linkUrl ? `${text} ${linkUrl}` : text, allowed)
  if (links.some((link) => link.verdict !== 'bank' && link.host !== server)) {
    throw new Problem('channels/link-not-allowed')
  }
}
