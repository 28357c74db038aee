import { Type } from '@sinclair/typebox'
import {
  Customer,
  DeviceEnrolment,
  DeviceList,
  DeviceResumed,
  DeviceRevoked,
  DeviceStateChangeBody,
  DeviceSuspended,
  DeviceToken,
  Enrolment,
  EnrolmentCode,
  NewCustomer,
  WipeConfirmed,
} from '@strongroom/sdk/protocol'
import type { FastifyRequest } from 'fastify'
import { IdempotencyKeyHeaders, idempotent } from '../idempotency/idempotency.ts'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { principalOf, requestHtu, singleHeader } from '../platform/http/request.ts'
import { idOf, problemResponses } from '../platform/http/schemas.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import { createCustomer, findCustomer } from './customers.ts'
import { publishDeviceRevoked, publishDeviceSuspended } from './device-events.ts'
import { refusalOfDeviceKey } from './device-key-refusal.ts'
import {
  type DeviceStateChange,
  type EnrolmentAttestation,
  enrolDevice,
  issueDeviceToken,
  listCustomerDevices,
} from './devices.ts'
import { verifyDpopProof } from './dpop.ts'
import { issueEnrolmentCode } from './enrolment-codes.ts'
import { resumeDevice } from './resume-device.ts'
import { revokeDevice } from './revoke-device.ts'
import { suspendDevice } from './suspend-device.ts'
import { confirmWipe, wipeCommandJwks } from './wipe-command.ts'

const DeviceParams = Type.Object({ deviceId: idOf('dev') })
const CustomerParams = Type.Object({ customerId: idOf('cus') })

/** Who asks for a device's state to change: staff for any device of the tenant, a device for its customer's only. */
function stateChange(request: FastifyRequest): DeviceStateChange {
  const principal = principalOf(request)
  return {
    actor: actorOf(principal),
    reason: (request.body as DeviceStateChangeBody)?.reason,
    customerId: principal.kind === 'device' ? principal.customerId : undefined,
  }
}

/**
 * What revoking a device takes with it elsewhere, in the revocation's own transaction (conversations: the device leaves
 * every conversation it was in). Gives the conversations it left, so that their members hear of it.
 */
export type DeviceRevocationHook = (
  trx: Pick<ServerContext, 'db'>,
  tenantId: string,
  device: { kind: 'device'; id: string },
) => Promise<string[]>

export async function identityRoutes(
  app: App,
  ctx: ServerContext,
  deps: { wipeKey: SigningKey; onRevoked: DeviceRevocationHook; enrolmentAttestation: EnrolmentAttestation },
): Promise<void> {
  await customerRoutes(app, ctx)
  await customerDeviceRoutes(app, ctx)
  await deviceRoutes(app, ctx, deps.enrolmentAttestation)
  await deviceStateRoutes(app, ctx, deps)
  await resumeAndTokenRoutes(app, ctx, deps)
  await wipeRoutes(app, ctx)
}

/** Registering a customer and reading one. */
async function customerRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/customers',
    {
      config: { access: allow.staff('customers:write') },
      schema: {
        summary: 'Register a customer of the bank',
        tags: ['identity'],
        body: NewCustomer,
        headers: IdempotencyKeyHeaders,
        response: { 201: Customer, ...problemResponses(400, 401, 403, 409, 422) },
      },
    },
    async (request, reply) =>
      idempotent(ctx, request, reply, 201, (scoped) =>
        createCustomer(scoped, principalOf(request).tenantId, request.body),
      ),
  )

  app.get(
    '/v1/customers/:customerId',
    {
      // Compliance officers (customers:export) see whom they review by name: the export gives them all of it anyway.
      config: { access: allow.staff('customers:write', 'customers:export') },
      schema: {
        summary: 'A customer: to agents (customers:write), and to compliance officers (customers:export)',
        tags: ['identity'],
        params: CustomerParams,
        response: { 200: Customer, ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const customer = await findCustomer(ctx, principalOf(request).tenantId, request.params.customerId)
      if (!customer) throw new Problem('request/not-found', 'no such customer')
      return customer
    },
  )
}

/** A customer's devices, and the codes that enrol new ones. */
async function customerDeviceRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/customers/:customerId/devices',
    {
      config: { access: allow.staff('customers:write') },
      schema: {
        summary: "A customer's devices",
        tags: ['identity'],
        params: CustomerParams,
        response: { 200: DeviceList, ...problemResponses(401, 403, 404) },
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
      config: { access: allow.staff('devices:enrol') },
      schema: {
        summary: 'Issue a single-use code with which one device of the customer enrols',
        tags: ['identity'],
        params: CustomerParams,
        headers: IdempotencyKeyHeaders,
        response: { 201: EnrolmentCode, ...problemResponses(401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      if (principal.kind !== 'staff') throw new Problem('auth/forbidden')
      const issuer = { kind: 'staff' as const, id: principal.staffId }
      reply.header('cache-control', 'no-store')
      return idempotent(ctx, request, reply, 201, (scoped) =>
        issueEnrolmentCode(scoped, principal.tenantId, request.params.customerId, issuer),
      )
    },
  )
}

/** Enrolling a device, and a customer's devices as the device sees them. */
async function deviceRoutes(app: App, ctx: ServerContext, attestation: EnrolmentAttestation): Promise<void> {
  app.post(
    '/v1/devices',
    {
      config: { access: allow.deviceKey, guesses: 'enrolment-code' },
      schema: {
        summary: 'Enrol the key that signs the DPoP proof as a device of the customer the code names',
        tags: ['identity'],
        body: DeviceEnrolment,
        response: { 201: Enrolment, ...problemResponses(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      const proof = await verifyDpopProof(ctx, singleHeader(request.headers.dpop), {
        htm: 'POST',
        htu: requestHtu(request, ctx.config.publicUrl),
      })
      const { attestation: evidence, ...input } = request.body
      const attested = await attestation(proof, { enrolmentCode: input.enrolmentCode, evidence })
      const enrolled = await enrolDevice(ctx, proof, input, attested)
      return reply.status(201).header('cache-control', 'no-store').send(enrolled)
    },
  )

  app.get(
    '/v1/devices',
    {
      config: { access: allow.device },
      schema: {
        summary: "The calling device's customer's devices (to revoke a lost one from another)",
        tags: ['identity'],
        response: { 200: DeviceList, ...problemResponses(401, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      if (principal.kind !== 'device') throw new Problem('auth/forbidden')
      return { devices: await listCustomerDevices(ctx, principal.tenantId, principal.customerId) }
    },
  )
}

/** Revoking and suspending a device. */
async function deviceStateRoutes(
  app: App,
  ctx: ServerContext,
  deps: { wipeKey: SigningKey; onRevoked: DeviceRevocationHook },
): Promise<void> {
  app.post(
    '/v1/devices/:deviceId/revoke',
    {
      config: { access: allow.member('devices:revoke') },
      schema: {
        summary:
          'Revoke a device: its tokens and sockets end at once on every node and it leaves every conversation. ' +
          "Staff may revoke any of the tenant's devices; a device only its own customer's.",
        tags: ['identity'],
        params: DeviceParams,
        body: DeviceStateChangeBody,
        response: { 200: DeviceRevoked, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const { deviceId } = request.params
      const left = await ctx.db.transaction().execute(async (trx) => {
        const { revoked } = await revokeDevice({ db: trx }, principal.tenantId, deviceId, stateChange(request))
        return revoked ? deps.onRevoked({ db: trx }, principal.tenantId, { kind: 'device', id: deviceId }) : []
      })
      publishDeviceRevoked(ctx.bus, { tenantId: principal.tenantId, deviceId, conversationIds: left })
      return { deviceId, status: 'revoked' as const, conversationsLeft: left.length }
    },
  )

  app.post(
    '/v1/devices/:deviceId/suspend',
    {
      config: { access: allow.member('devices:revoke') },
      schema: {
        summary:
          'Suspend a device for a while (mislaid): its tokens and sockets end at once on every node, but it stays in ' +
          "its conversations and keeps its local store. Staff may suspend any of the tenant's devices; a device only " +
          "its own customer's.",
        tags: ['identity'],
        params: DeviceParams,
        body: DeviceStateChangeBody,
        response: { 200: DeviceSuspended, ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const { deviceId } = request.params
      const { suspended } = await suspendDevice(ctx, principal.tenantId, deviceId, stateChange(request))
      if (suspended) publishDeviceSuspended(ctx.bus, { tenantId: principal.tenantId, deviceId })
      return { deviceId, status: 'suspended' as const }
    },
  )
}

/** Resuming a suspended device, and renewing a device's access token. */
async function resumeAndTokenRoutes(
  app: App,
  ctx: ServerContext,
  deps: { wipeKey: SigningKey; onRevoked: DeviceRevocationHook },
): Promise<void> {
  app.post(
    '/v1/devices/:deviceId/resume',
    {
      // A suspended device's own credentials are refused before this: another device of the customer resumes it.
      config: { access: allow.member('devices:revoke') },
      schema: {
        summary:
          'Resume a suspended device: it gets tokens again and reads what it missed. Staff may resume any of the ' +
          "tenant's devices; a device only its own customer's (a suspended device cannot resume itself).",
        tags: ['identity'],
        params: DeviceParams,
        body: DeviceStateChangeBody,
        response: { 200: DeviceResumed, ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const { deviceId } = request.params
      await resumeDevice(ctx, principal.tenantId, deviceId, stateChange(request))
      return { deviceId, status: 'active' as const }
    },
  )

  app.post(
    '/v1/devices/token',
    {
      config: { access: allow.deviceKey },
      schema: {
        summary:
          'A fresh access token for the enrolled device whose key signs the DPoP proof; a revoked device gets ' +
          'identity/device-wiped with a signed wipe command instead, a suspended one identity/device-suspended',
        tags: ['identity'],
        response: { 200: DeviceToken, ...problemResponses(401, 403) },
      },
    },
    async (request, reply) => {
      const proof = await verifyDpopProof(ctx, singleHeader(request.headers.dpop), {
        htm: 'POST',
        htu: requestHtu(request, ctx.config.publicUrl),
      })
      const refusal = await refusalOfDeviceKey(ctx, deps.wipeKey, proof.jkt)
      if (refusal) throw refusal
      return reply.header('cache-control', 'no-store').send(await issueDeviceToken(ctx, proof))
    },
  )
}

/** Remote wipe: the confirmation a revoked device sends, and the keys that verify wipe commands. */
async function wipeRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/devices/wipe-confirmation',
    {
      // Only a revoked device's key is accepted: it confirms that it erased its store.
      config: { access: allow.deviceKey },
      schema: {
        summary: 'A revoked device, proving its key, confirms that it erased its local store (audited)',
        tags: ['identity'],
        response: {
          200: WipeConfirmed,
          ...problemResponses(401, 403),
        },
      },
    },
    async (request) => {
      const proof = await verifyDpopProof(ctx, singleHeader(request.headers.dpop), {
        htm: 'POST',
        htu: requestHtu(request, ctx.config.publicUrl),
      })
      return confirmWipe(ctx, proof)
    },
  )

  app.get(
    '/.well-known/strongroom-wipe-keys',
    {
      config: { access: allow.anyone },
      schema: {
        summary: 'The public keys (JWKS) that verify remote wipe commands; a device pins them at enrolment',
        tags: ['identity'],
      },
    },
    async (_request, reply) => reply.header('cache-control', 'public, max-age=300').send(await wipeCommandJwks(ctx)),
  )
}
