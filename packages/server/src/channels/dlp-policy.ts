import { type Static, Type } from '@sinclair/typebox'
import { type Actor, recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { loadTenantPolicy, saveTenantPolicy } from '../tenancy/policies.ts'
import { type CustomPattern, compilePattern, InvalidPattern } from './dlp.ts'

/** A tenant's own formats to mask on public channels, beside cards, CVVs and IBANs (which are always masked). */
export const DlpPattern = Type.Object(
  {
    label: Type.String({
      minLength: 1,
      maxLength: 60,
      pattern: "^[\\p{L}\\p{N} ._'-]+$",
      description: 'shown in place of the match, e.g. [national id]',
    }),
    pattern: Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'an RE2 regular expression, matched case-insensitively (no backreferences or lookarounds)',
    }),
  },
  { additionalProperties: false },
)
export const DlpPatterns = Type.Array(DlpPattern, { maxItems: 20 })

export const DlpPolicy = Type.Object({ patterns: DlpPatterns }, { additionalProperties: false })
export type DlpPolicy = Static<typeof DlpPolicy>

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
