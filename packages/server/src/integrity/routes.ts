import { Type } from '@sinclair/typebox'
import { principalOf } from '../access.ts'
import type { ServerContext } from '../platform/context.ts'
import type { App } from '../platform/http/fastify.ts'
import { Problem } from '../platform/http/problems.ts'
import { oneOf, problemResponses } from '../platform/http/schemas.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import { actorOf } from '../principal.ts'
import { deactivateAppVersion } from './app-versions.ts'
import { attest } from './attest.ts'
import { issueChallenge } from './challenges.ts'

export async function integrityRoutes(app: App, ctx: ServerContext, deps: { tokenKey: SigningKey }): Promise<void> {
  app.post(
    '/v1/integrity/challenges',
    {
      schema: {
        summary: 'A single-use challenge for the next attestation (two minutes)',
        tags: ['integrity'],
        response: {
          201: Type.Object({ challenge: Type.String(), expiresAt: Type.String() }),
          ...problemResponses(401, 403),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      if (principal.kind !== 'device') throw new Problem('auth/forbidden')
      return reply.status(201).send(await issueChallenge(ctx, principal.tenantId, principal.deviceId))
    },
  )

  app.post(
    '/v1/apps/:appId/versions/:appVersion/deactivate',
    {
      schema: {
        summary: 'Switch off one version of an app: its integrity tokens stop working at once and it cannot attest',
        tags: ['integrity'],
        params: Type.Object({
          appId: Type.String({ minLength: 1, maxLength: 200 }),
          appVersion: Type.String({ pattern: '^[0-9]+(\\.[0-9]+){0,2}$' }),
        }),
        body: Type.Optional(
          Type.Object({ reason: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false }),
        ),
        response: { 204: Type.Null(), ...problemResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      await deactivateAppVersion(
        ctx,
        principal.tenantId,
        { ...request.params, reason: request.body?.reason },
        actorOf(principal),
      )
      return reply.status(204).send(null)
    },
  )

  app.post(
    '/v1/integrity/attest',
    {
      schema: {
        summary: 'Prove the app and device; get an integrity token whose lifetime and scope follow the policy',
        tags: ['integrity'],
        body: Type.Object(
          {
            format: Type.Literal('dev'),
            challenge: Type.String({ minLength: 16, maxLength: 128 }),
            appId: Type.String({ minLength: 1, maxLength: 200 }),
            appVersion: Type.String({ pattern: '^[0-9]+(\\.[0-9]+){0,2}$' }),
            signals: Type.Object(
              { rooted: Type.Boolean(), debugger: Type.Boolean(), hooking: Type.Boolean(), emulator: Type.Boolean() },
              { additionalProperties: false },
            ),
            proof: Type.String({ minLength: 1, maxLength: 4096 }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            integrityToken: Type.String(),
            expiresIn: Type.Integer(),
            scope: oneOf(['full', 'read-only'] as const),
            reason: Type.String(),
          }),
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      if (principal.kind !== 'device') throw new Problem('auth/forbidden')
      return reply.header('cache-control', 'no-store').send(await attest(ctx, deps.tokenKey, principal, request.body))
    },
  )
}
