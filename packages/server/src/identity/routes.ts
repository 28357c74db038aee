import { Type } from '@sinclair/typebox'
import { principalOf, requestHtu, singleHeader } from '../access.ts'
import { removeMemberEverywhere } from '../conversations/conversations.ts'
import type { ServerContext } from '../platform/context.ts'
import type { App } from '../platform/http/fastify.ts'
import { Problem } from '../platform/http/problems.ts'
import { idOf, problemResponses } from '../platform/http/schemas.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import { actorOf } from '../principal.ts'
import { createCustomer, findCustomer } from './customers.ts'
import { publishDeviceRevoked } from './device-events.ts'
import { enrolDevice, issueDeviceToken, listCustomerDevices } from './devices.ts'
import { verifyDpopProof } from './dpop.ts'
import { issueEnrolmentCode } from './enrolment-codes.ts'
import { revokeDevice } from './revoke-device.ts'
import { confirmWipe, deviceWipedProblem, revokedDeviceOfKey, wipeCommandJwks } from './wipe-command.ts'

const CustomerSchema = Type.Object({
  id: Type.String(),
  externalRef: Type.String(),
  displayName: Type.String(),
  phoneNumber: Type.Optional(Type.String()),
  createdAt: Type.String(),
})
/** A device as the API shows it (no key material: its key's thumbprint). */
export const DeviceSchema = Type.Object({
  id: Type.String(),
  customerId: Type.String(),
  label: Type.String(),
  status: Type.String(),
  keyThumbprint: Type.String(),
  createdAt: Type.String(),
})
/** A device's access token, bound to its key (DPoP). */
export const TokenSchema = Type.Object({
  accessToken: Type.String(),
  tokenType: Type.Literal('DPoP'),
  expiresIn: Type.Integer(),
})
const CustomerParams = Type.Object({ customerId: idOf('cus') })

export async function identityRoutes(app: App, ctx: ServerContext, keys: { wipeKey: SigningKey }): Promise<void> {
  app.post(
    '/v1/customers',
    {
      schema: {
        summary: 'Register a customer of the bank',
        tags: ['identity'],
        body: Type.Object(
          {
            externalRef: Type.String({ minLength: 1, maxLength: 128, description: "the bank's own customer id" }),
            displayName: Type.String({ minLength: 1, maxLength: 200 }),
            phoneNumber: Type.Optional(
              Type.String({
                pattern: '^\\+[1-9][0-9]{4,14}$',
                description: 'E.164; matches texts from public channels (SMS, WhatsApp) to this customer',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 201: CustomerSchema, ...problemResponses(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      const customer = await createCustomer(ctx, principalOf(request).tenantId, request.body)
      return reply.status(201).send(customer)
    },
  )

  app.get(
    '/v1/customers/:customerId',
    {
      schema: {
        summary: 'A customer',
        tags: ['identity'],
        params: CustomerParams,
        response: { 200: CustomerSchema, ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const customer = await findCustomer(ctx, principalOf(request).tenantId, request.params.customerId)
      if (!customer) throw new Problem('request/not-found', 'no such customer')
      return customer
    },
  )

  app.get(
    '/v1/customers/:customerId/devices',
    {
      schema: {
        summary: "A customer's devices",
        tags: ['identity'],
        params: CustomerParams,
        response: { 200: Type.Object({ devices: Type.Array(DeviceSchema) }), ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const tenantId = principalOf(request).tenantId
      if (!(await findCustomer(ctx, tenantId, request.params.customerId))) {
        throw new Problem('request/not-found', 'no such customer')
      }
      return { devices: await listCustomerDevices(ctx, tenantId, request.params.customerId) }
    },
  )

  app.post(
    '/v1/customers/:customerId/enrolment-codes',
    {
      schema: {
        summary: 'Issue a single-use code with which one device of the customer enrols',
        tags: ['identity'],
        params: CustomerParams,
        response: {
          201: Type.Object({ code: Type.String(), expiresAt: Type.String() }),
          ...problemResponses(401, 403, 404),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      if (principal.kind !== 'staff') throw new Problem('auth/forbidden')
      const issued = await issueEnrolmentCode(ctx, principal.tenantId, request.params.customerId, {
        kind: 'staff',
        id: principal.staffId,
      })
      return reply.status(201).header('cache-control', 'no-store').send(issued)
    },
  )

  app.post(
    '/v1/devices',
    {
      schema: {
        summary: 'Enrol the key that signs the DPoP proof as a device of the customer the code names',
        tags: ['identity'],
        body: Type.Object(
          {
            enrolmentCode: Type.String({ minLength: 16, maxLength: 32 }),
            label: Type.String({ minLength: 1, maxLength: 100 }),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({ device: DeviceSchema, tenantId: Type.String(), token: TokenSchema }),
          ...problemResponses(400, 401, 409),
        },
      },
    },
    async (request, reply) => {
      const proof = await verifyDpopProof(ctx, singleHeader(request.headers.dpop), {
        htm: 'POST',
        htu: requestHtu(request),
      })
      const enrolled = await enrolDevice(ctx, proof, request.body)
      return reply.status(201).header('cache-control', 'no-store').send(enrolled)
    },
  )

  app.get(
    '/v1/devices',
    {
      schema: {
        summary: "The calling device's customer's devices (to revoke a lost one from another)",
        tags: ['identity'],
        response: { 200: Type.Object({ devices: Type.Array(DeviceSchema) }), ...problemResponses(401, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      if (principal.kind !== 'device') throw new Problem('auth/forbidden')
      return { devices: await listCustomerDevices(ctx, principal.tenantId, principal.customerId) }
    },
  )

  app.post(
    '/v1/devices/:deviceId/revoke',
    {
      schema: {
        summary:
          'Revoke a device: its tokens and sockets end at once on every node and it leaves every conversation. ' +
          "Staff may revoke any of the tenant's devices; a device only its own customer's.",
        tags: ['identity'],
        params: Type.Object({ deviceId: idOf('dev') }),
        body: Type.Optional(
          Type.Object({ reason: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false }),
        ),
        response: {
          200: Type.Object({
            deviceId: Type.String(),
            status: Type.Literal('revoked'),
            conversationsLeft: Type.Integer(),
          }),
          ...problemResponses(400, 401, 403, 404),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const { deviceId } = request.params
      const left = await ctx.db.transaction().execute(async (trx) => {
        const { revoked } = await revokeDevice({ db: trx }, principal.tenantId, deviceId, {
          actor: actorOf(principal),
          reason: request.body?.reason,
          customerId: principal.kind === 'device' ? principal.customerId : undefined,
        })
        return revoked ? removeMemberEverywhere({ db: trx }, principal.tenantId, { kind: 'device', id: deviceId }) : []
      })
      publishDeviceRevoked(ctx.bus, { tenantId: principal.tenantId, deviceId, conversationIds: left })
      return { deviceId, status: 'revoked' as const, conversationsLeft: left.length }
    },
  )

  app.post(
    '/v1/devices/token',
    {
      schema: {
        summary:
          'A fresh access token for the enrolled device whose key signs the DPoP proof; a revoked device gets ' +
          'identity/device-wiped with a signed wipe command instead',
        tags: ['identity'],
        response: { 200: TokenSchema, ...problemResponses(401) },
      },
    },
    async (request, reply) => {
      const proof = await verifyDpopProof(ctx, singleHeader(request.headers.dpop), {
        htm: 'POST',
        htu: requestHtu(request),
      })
      const revoked = await revokedDeviceOfKey(ctx, proof.jkt)
      if (revoked) throw await deviceWipedProblem(keys.wipeKey, revoked)
      return reply.header('cache-control', 'no-store').send(await issueDeviceToken(ctx, proof))
    },
  )

  app.post(
    '/v1/devices/wipe-confirmation',
    {
      schema: {
        summary: 'A revoked device, proving its key, confirms that it erased its local store (audited)',
        tags: ['identity'],
        response: {
          200: Type.Object({ deviceId: Type.String(), wipedAt: Type.String() }),
          ...problemResponses(401, 403),
        },
      },
    },
    async (request) => {
      const proof = await verifyDpopProof(ctx, singleHeader(request.headers.dpop), {
        htm: 'POST',
        htu: requestHtu(request),
      })
      return confirmWipe(ctx, proof)
    },
  )

  app.get(
    '/.well-known/strongroom-wipe-keys',
    {
      schema: {
        summary: 'The public keys (JWKS) that verify remote wipe commands; a device pins them at enrolment',
        tags: ['identity'],
      },
    },
    async (_request, reply) => reply.header('cache-control', 'public, max-age=300').send(await wipeCommandJwks(ctx)),
  )
}
