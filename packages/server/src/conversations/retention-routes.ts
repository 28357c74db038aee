import { Type } from '@sinclair/typebox'
import { DeviceRetention } from '@strongroom/sdk/protocol'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf } from '../platform/http/principal.ts'
import { principalOf } from '../platform/http/request.ts'
import { idOf, problemResponses } from '../platform/http/schemas.ts'
import { loadRetentionPolicy, saveRetentionPolicy, setConversationRetention } from './retention.ts'

export async function retentionRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/policies/retention',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: "The tenant's retention of message ciphertext kept for devices",
        tags: ['conversations'],
        response: { 200: DeviceRetention, ...problemResponses(401, 403) },
      },
    },
    async (request) => loadRetentionPolicy(ctx, principalOf(request).tenantId),
  )

  app.put(
    '/v1/policies/retention',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: 'Replace the retention for devices (audited); applies to messages sent from now on',
        tags: ['conversations'],
        body: DeviceRetention,
        response: { 200: DeviceRetention, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      await saveRetentionPolicy(ctx, principal.tenantId, request.body, actorOf(principal))
      return request.body
    },
  )

  app.put(
    '/v1/conversations/:conversationId/retention',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: "Override the tenant's retention for devices in one conversation (null: the tenant's applies)",
        tags: ['conversations'],
        params: Type.Object({ conversationId: idOf('cnv') }),
        body: DeviceRetention,
        response: { 200: DeviceRetention, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      await setConversationRetention(
        ctx,
        principal.tenantId,
        request.params.conversationId,
        request.body.deviceMessageDays,
        actorOf(principal),
      )
      return request.body
    },
  )
}
