import { Type } from '@sinclair/typebox'
import { PayeeBlock, PayeeBlockLift, PayeeBlockList } from '@strongroom/sdk/protocol'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf } from '../platform/http/principal.ts'
import { principalOf } from '../platform/http/request.ts'
import { idOf, problemResponses } from '../platform/http/schemas.ts'
import { liftPayeeBlock, listPayeeBlocks } from './payee-blocks.ts'

/** The payees customers blocked with "This wasn't me": seen and lifted by supervisors and administrators. */
export async function payeeBlockRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/customers/:customerId/payee-blocks',
    {
      config: { access: allow.staff('consents:unblock') },
      schema: {
        summary: 'The payees this customer blocked by declining a request as "This wasn\'t me", lifted ones included',
        tags: ['consent'],
        params: Type.Object({ customerId: idOf('cus') }),
        response: { 200: PayeeBlockList, ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => ({
      blocks: await listPayeeBlocks(ctx, principalOf(request).tenantId, request.params.customerId),
    }),
  )

  app.post(
    '/v1/consents/:consentId/payee-block/lift',
    {
      config: { access: allow.staff('consents:unblock') },
      schema: {
        summary:
          'Lift the block a "This wasn\'t me" decline put on its payee for that customer (audited with the reason)',
        description:
          'Every block of the customer on the same payee account is lifted; the record of the fraud report stays. ' +
          'A block not in force (none, or already lifted) is not found.',
        tags: ['consent'],
        params: Type.Object({ consentId: idOf('con') }),
        body: PayeeBlockLift,
        response: { 200: PayeeBlock, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const reason = request.body.reason.trim()
      return liftPayeeBlock(ctx, principal.tenantId, request.params.consentId, { reason }, actorOf(principal))
    },
  )
}
