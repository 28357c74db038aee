import type { RateLimitPolicy } from '@strongroom/sdk/protocol'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { loadTenantPolicy, saveTenantPolicy } from '../tenancy/policies.ts'

/**
 * The limits of every tenant that set none, and of requests that name no tenant (a pivot link, an enrolment). The
 * limit per IP address on every request is the deployment's (STRONGROOM_RATE_LIMIT_IP_PER_MINUTE): it applies
 * before anyone is known.
 */
export const DEFAULT_RATE_LIMIT_POLICY: RateLimitPolicy = {
  requestsPerMinute: { device: 1_200, customer: 3_000, tenant: 120_000 },
  failedAttempts: {
    windowMinutes: 15,
    perAddress: {
      'pivot-link': 100,
      'enrolment-code': 100,
      'one-time-code': 100,
      'consent-approval': 100,
      'staff-sign-in': 50,
      'oauth-token': 100,
    },
    perDevice: { 'pivot-link': 20, 'one-time-code': 10, 'consent-approval': 20 },
  },
}

const POLICY_NAME = 'rate-limits'
/** How long a node keeps a tenant's policy before reading it again: a change applies everywhere within this. */
const POLICY_CACHE_MS = 5000

export async function loadRateLimitPolicy(ctx: Pick<ServerContext, 'db'>, tenantId: string): Promise<RateLimitPolicy> {
  return (await loadTenantPolicy<RateLimitPolicy>(ctx, tenantId, POLICY_NAME)) ?? DEFAULT_RATE_LIMIT_POLICY
}

/** Replaces the tenant's rate limits, audited; every node applies them within five seconds. */
export async function saveRateLimitPolicy(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  policy: RateLimitPolicy,
  actor: Actor,
): Promise<void> {
  await ctx.db.transaction().execute(async (trx) => {
    await saveTenantPolicy({ db: trx }, tenantId, POLICY_NAME, policy, `${actor.kind}:${actor.id}`)
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'policy.rate-limits.update',
      outcome: 'success',
      details: {
        ...policy.requestsPerMinute,
        windowMinutes: policy.failedAttempts.windowMinutes,
        ...Object.fromEntries(
          Object.entries(policy.failedAttempts.perAddress).map(([k, n]) => [`${k} per address`, n]),
        ),
        ...Object.fromEntries(Object.entries(policy.failedAttempts.perDevice).map(([k, n]) => [`${k} per device`, n])),
      },
    })
  })
}

/** Each tenant's policy as this node last read it, read again after five seconds. */
export class RateLimitPolicies {
  readonly #cache = new Map<string, { policy: Promise<RateLimitPolicy>; readAt: number }>()

  constructor(private readonly ctx: Pick<ServerContext, 'db'>) {}

  of(tenantId: string | undefined): Promise<RateLimitPolicy> | RateLimitPolicy {
    if (!tenantId) return DEFAULT_RATE_LIMIT_POLICY
    const cached = this.#cache.get(tenantId)
    if (cached && Date.now() - cached.readAt < POLICY_CACHE_MS) return cached.policy
    const policy = loadRateLimitPolicy(this.ctx, tenantId)
    this.#cache.set(tenantId, { policy, readAt: Date.now() })
    policy.catch(() => this.#cache.delete(tenantId))
    return policy
  }
}
