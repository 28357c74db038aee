import { Type } from '@sinclair/typebox'
import { DataSubjectExport } from '@strongroom/sdk/protocol'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf } from '../platform/http/principal.ts'
import { principalOf } from '../platform/http/request.ts'
import { idOf, problemResponses } from '../platform/http/schemas.ts'
import { exportCustomerData } from './export-customer.ts'

/** Data subject requests: the export of everything held about a customer (erasure is the archive's). */
export async function dataSubjectRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/customers/:customerId/export',
    {
      config: { access: allow.staff('customers:export') },
      schema: {
        summary: 'Export everything held about a customer, as one JSON file to download (data subject access; audited)',
        tags: ['data subject requests'],
        params: Type.Object({ customerId: idOf('cus') }),
        response: { 200: DataSubjectExport, ...problemResponses(400, 401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const { customerId } = request.params
      const document = await exportCustomerData(ctx, principal.tenantId, customerId, actorOf(principal))
      // Serialized through the response schema: a field that is not declared there never leaves.
      return reply
        .header('content-disposition', `attachment; filename="strongroom-customer-${customerId}.json"`)
        .header('cache-control', 'no-store')
        .send(document)
    },
  )
}
