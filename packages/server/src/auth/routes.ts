import { Type } from '@sinclair/typebox'
import { principalOf } from '../access.ts'
import type { ServerContext } from '../platform/context.ts'
import type { App } from '../platform/http/fastify.ts'
import { Problem } from '../platform/http/problems.ts'
import { problemResponses } from '../platform/http/schemas.ts'
import { actorOf } from '../principal.ts'
import { findTenant } from '../tenancy/tenants.ts'
import { enrolTotp, verifyTotp } from './totp.ts'

const CodeBody = Type.Object(
  { code: Type.String({ pattern: '^[0-9]{6}$', description: 'the 6-digit code the authenticator app shows' }) },
  { additionalProperties: false },
)

export async function authRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/factors/totp',
    {
      schema: {
        summary: "Start enrolling an authenticator app (TOTP) for the device's customer",
        tags: ['auth'],
        response: {
          201: Type.Object({ factorId: Type.String(), otpauthUri: Type.String(), qrCodeSvg: Type.String() }),
          ...problemResponses(401, 403),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      if (principal.kind !== 'device') throw new Problem('auth/forbidden')
      const tenant = await findTenant(ctx, principal.tenantId)
      const enrolment = await enrolTotp(
        ctx,
        principal.tenantId,
        principal.customerId,
        tenant?.name ?? 'Strongroom',
        actorOf(principal),
      )
      return reply.status(201).header('cache-control', 'no-store').send(enrolment)
    },
  )

  for (const [path, confirm, summary] of [
    ['/v1/factors/totp/confirm', true, 'Activate the enrolled authenticator app with its first code'],
    ['/v1/factors/totp/verify', false, 'Check a code of the active authenticator app (each code works once)'],
  ] as const) {
    app.post(
      path,
      {
        schema: {
          summary,
          tags: ['auth'],
          body: CodeBody,
          response: { 204: Type.Null(), ...problemResponses(400, 401, 403) },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request)
        if (principal.kind !== 'device') throw new Problem('auth/forbidden')
        await verifyTotp(ctx, principal.tenantId, principal.customerId, request.body.code, {
          confirm,
          actor: actorOf(principal),
        })
        return reply.status(204).send(null)
      },
    )
  }
}
