import { Type } from '@sinclair/typebox'
import { principalOf } from '../access.ts'
import { recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import type { App } from '../platform/http/fastify.ts'
import { Problem } from '../platform/http/problems.ts'
import { problemResponses } from '../platform/http/schemas.ts'
import { actorOf } from '../principal.ts'
import { scanText } from './dlp.ts'

export async function channelRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/dlp/scan',
    {
      schema: {
        summary:
          'Mask card numbers, CVVs, IBANs and the given patterns in a text meant for a public channel (SMS, WhatsApp, ' +
          'Messenger) before it is sent or stored',
        tags: ['channels'],
        body: Type.Object(
          {
            text: Type.String({ maxLength: 65536 }),
            patterns: Type.Optional(
              Type.Array(
                Type.Object(
                  {
                    label: Type.String({ minLength: 1, maxLength: 60 }),
                    pattern: Type.String({ minLength: 1, maxLength: 200 }),
                  },
                  { additionalProperties: false },
                ),
                { maxItems: 20 },
              ),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            masked: Type.String(),
            findings: Type.Array(
              Type.Object({
                kind: Type.String(),
                label: Type.Optional(Type.String()),
                start: Type.Integer(),
                end: Type.Integer(),
              }),
            ),
          }),
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      let result: ReturnType<typeof scanText>
      try {
        result = scanText(request.body.text, request.body.patterns ?? [])
      } catch {
        // A tenant pattern that is not a valid regular expression.
        throw new Problem('request/invalid', 'a pattern is not a valid regular expression')
      }
      if (result.findings.length > 0) {
        await recordAudit(ctx.db, {
          tenantId: principal.tenantId,
          actor: actorOf(principal),
          action: 'dlp.mask',
          outcome: 'success',
          details: { kinds: [...new Set(result.findings.map((f) => f.kind))], count: result.findings.length },
        })
      }
      return result
    },
  )
}
