import type { DlpPolicy } from '@strongroom/sdk/protocol'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { loadTenantPolicy, saveTenantPolicy } from '../tenancy/policies.ts'
import { type CustomPattern, compilePattern, InvalidPattern } from './dlp.ts'

const POLICY_NAME = 'dlp'

export async function loadDlpPatterns(ctx: Pick<ServerContext, 'db'>, tenantId: string): Promise<CustomPattern[]> {
  return (await loadTenantPolicy<DlpPolicy>(ctx, tenantId, POLICY_NAME))?.patterns ?? []
}

/** Every pattern must compile, or the policy is refused whole and the one in force stays. */
export function requireValidPatterns(patterns: readonly CustomPattern[]): void {
  for (const { label, pattern } of patterns) {
    try {
      compilePattern(pattern)
    } catch (error) {
      if (error instanceof InvalidPattern) throw new Problem('request/invalid', `pattern "${label}": ${error.message}`)
      throw error
    }
  }
}

export async function saveDlpPolicy(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  policy: DlpPolicy,
  actor: Actor,
): Promise<void> {
  requireValidPatterns(policy.patterns)
  await ctx.db.transaction().execute(async (trx) => {
    await saveTenantPolicy({ db: trx }, tenantId, POLICY_NAME, policy, `${actor.kind}:${actor.id}`)
    await recordAudit(trx, {
      tenantId,
      actor,
      action: 'policy.dlp.update',
      outcome: 'success',
      details: { labels: policy.patterns.map((p) => p.label) },
    })
  })
}
