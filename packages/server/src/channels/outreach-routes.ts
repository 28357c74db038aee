import { Type } from '@sinclair/typebox'
import { CustomerChannelList, OutreachMessage, OutreachStarted } from '@strongroom/sdk/protocol'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { principalMember } from '../platform/http/principal.ts'
import { principalOf } from '../platform/http/request.ts'
import { idOf, problemResponses } from '../platform/http/schemas.ts'
import { customerPublicChannels, reachCustomer } from './outreach.ts'
import { type ChannelDeps, refuseSensitiveData, sendPublicMessage } from './public-messages.ts'

const CustomerParams = Type.Object({ customerId: idOf('cus') })

/** An agent writing to a customer first, on a channel the customer has, without waiting for them to write. */
export async function outreachRoutes(app: App, ctx: ServerContext, deps: ChannelDeps): Promise<void> {
  app.get(
    '/v1/customers/:customerId/public-channels',
    {
      config: { access: allow.staff('conversations:write') },
      schema: {
        summary:
          "The bank's public channels as ways to write to this customer first: the conversation they have there, " +
          'the messaging window the next message falls in, or why the bank cannot write there',
        tags: ['channels'],
        params: CustomerParams,
        response: {
          200: CustomerChannelList,
          ...problemResponses(401, 403, 404),
        },
      },
    },
    async (request) => ({
      channels: await customerPublicChannels(ctx, principalOf(request), request.params.customerId),
    }),
  )

  app.post(
    '/v1/customers/:customerId/public-messages',
    {
      config: { access: allow.staff('conversations:write') },
      schema: {
        summary:
          'Start a conversation: send the customer a message on a public channel they have, without waiting for them ' +
          'to write (on WhatsApp after 24 hours as the approved `message` template); the same clientMessageId never ' +
          'sends twice',
        description:
          'The customer’s conversation on the channel is reused (their number’s, or their Messenger conversation), or ' +
          'made and assigned to the caller; the caller joins it. Refused with card or account data ' +
          '(`channels/sensitive-data`), outside the messaging window (`channels/outside-service-window`), and where ' +
          'the bank cannot write to them (`channels/customer-unreachable`: no number on file, no Messenger ' +
          'conversation, another agent’s conversation).',
        tags: ['channels'],
        params: CustomerParams,
        body: OutreachMessage,
        response: {
          201: OutreachStarted,
          ...problemResponses(400, 401, 403, 404, 409, 422, 502, 503),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const { customerId } = request.params
      const { connector, clientMessageId, text } = request.body
      // Checked before any conversation is made: a refused text leaves nothing behind.
      await refuseSensitiveData(ctx, principal, { kind: 'customer', id: customerId }, connector, text)
      const identity = await reachCustomer(ctx, principal, customerId, connector, 'message')
      const message = await sendPublicMessage(ctx, deps, {
        tenantId: principal.tenantId,
        conversationId: identity.conversationId,
        sender: { kind: 'staff', id: principalMember(principal).id },
        clientMessageId: `agent-${clientMessageId}`,
        text,
      })
      return reply.status(201).send({ conversationId: identity.conversationId, message })
    },
  )
}
