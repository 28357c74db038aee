import { Type } from '@sinclair/typebox'
import {
  AppRegistration,
  AppVersionDeactivation,
  AttestationEvidence,
  AttestationGrant,
  DeviceVerdictList,
  EnrolmentChallenge,
  EnrolmentChallengeRequest,
  IntegrityChallenge,
  IntegrityPolicy,
  Rekeyed,
  RekeyRequest,
  RuntimeSecretValue,
  RuntimeSecretVersion,
  SealedSecret,
  SecretsKeyRegistration,
  SignedPinSet,
} from '@strongroom/sdk/protocol'
import { findCustomer } from '../identity/customers.ts'
import { listCustomerDevices } from '../identity/devices.ts'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { principalOf } from '../platform/http/request.ts'
import { idOf, problemResponses } from '../platform/http/schemas.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import { rekeyAndroidDevice } from './android-key.ts'
import { androidVersionCodeKey, type DeactivatedAppVersions, deactivateAppVersion } from './app-versions.ts'
import { registerApp } from './apps.ts'
import { attest } from './attest.ts'
import { issueChallenge } from './challenges.ts'
import { deviceVerdicts } from './device-verdicts.ts'
import { issueEnrolmentChallenge } from './enrolment-attestation.ts'
import type { HardwareVerifiers } from './hardware-attestation.ts'
import { currentPinSet } from './pin-sets.ts'
import { loadIntegrityPolicy, saveIntegrityPolicy } from './policy.ts'
import { deliverRuntimeSecret, registerSecretsKey, setRuntimeSecret } from './runtime-secrets.ts'

const SecretName = Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9._-]+$' })
const AppIdParam = Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9._-]+$' })

export async function integrityRoutes(
  app: App,
  ctx: ServerContext,
  deps: { tokenKey: SigningKey; verifiers: HardwareVerifiers; deactivated: DeactivatedAppVersions },
): Promise<void> {
  await integrityPolicyRoutes(app, ctx)
  await pinSetRoutes(app, ctx)
  await secretDeliveryRoutes(app, ctx)
  await appRoutes(app, ctx)
  await appVersionRoutes(app, ctx, deps)
  versionCodeRoute(app, ctx, deps)
  await attestationRoutes(app, ctx, deps)
  androidKeyRoutes(app, ctx, deps)
}

/** What staff see of device integrity, and the tenant's integrity policy. */
async function integrityPolicyRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/customers/:customerId/device-integrity',
    {
      config: { access: allow.staff('customers:write') },
      schema: {
        summary:
          "The integrity policy's latest decision for each of a customer's devices that has attested (allow, limited, deny; reason; risk flags)",
        tags: ['integrity'],
        params: Type.Object({ customerId: idOf('cus') }),
        response: {
          200: DeviceVerdictList,
          ...problemResponses(401, 403, 404),
        },
      },
    },
    async (request) => {
      const { tenantId } = principalOf(request)
      const { customerId } = request.params
      if (!(await findCustomer(ctx, tenantId, customerId))) throw new Problem('request/not-found', 'no such customer')
      const devices = await listCustomerDevices(ctx, tenantId, customerId)
      return {
        devices: await deviceVerdicts(
          ctx,
          tenantId,
          devices.map((d) => d.id),
        ),
      }
    },
  )

  app.get(
    '/v1/policies/integrity',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: 'The tenant’s integrity policy: what each risk signal leads to, minimum app version, token lifetimes',
        tags: ['integrity'],
        response: { 200: IntegrityPolicy, ...problemResponses(401, 403) },
      },
    },
    // The effective policy: the minimum app version is the deployment's unless the bank set its own.
    async (request) => loadIntegrityPolicy(ctx, principalOf(request).tenantId),
  )

  app.put(
    '/v1/policies/integrity',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: 'Replace the integrity policy (audited; every node applies it within five seconds)',
        tags: ['integrity'],
        body: IntegrityPolicy,
        response: { 200: IntegrityPolicy, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      await saveIntegrityPolicy(ctx, principal.tenantId, request.body, actorOf(principal))
      return request.body
    },
  )
}

/** The signed pin sets apps fetch, and the runtime secrets staff store. */
async function pinSetRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/.well-known/strongroom-pins',
    {
      config: { access: allow.anyone },
      schema: {
        summary: 'The newest certificate pin set: a JWS (ES256) the app verifies with the pin-set key it carries',
        tags: ['integrity'],
        response: { 200: SignedPinSet, ...problemResponses(404) },
      },
    },
    async (_request, reply) => {
      const current = await currentPinSet(ctx.db)
      if (!current) throw new Problem('request/not-found', 'no pin set has been published')
      return reply.type('application/jose').header('cache-control', 'public, max-age=300').send(current.document)
    },
  )

  app.put(
    '/v1/secrets/:name',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary:
          'Set or rotate a runtime secret (an API key the app needs); attested devices get the new value at once',
        tags: ['integrity'],
        params: Type.Object({ name: SecretName }),
        body: RuntimeSecretValue,
        response: {
          200: RuntimeSecretVersion,
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const value = Buffer.from(request.body.value, 'base64')
      return setRuntimeSecret(ctx, principal.tenantId, request.params.name, value, actorOf(principal))
    },
  )
}

/** Runtime secrets, delivered only to attested apps, encrypted to the device key. */
async function secretDeliveryRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/integrity/secrets-key',
    {
      config: { access: allow.device },
      schema: {
        summary: 'Register the device’s P-256 key agreement key, to which runtime secrets are sealed (HPKE)',
        tags: ['integrity'],
        body: SecretsKeyRegistration,
        response: { 204: Type.Null(), ...problemResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      if (principal.kind !== 'device') throw new Problem('auth/forbidden')
      await registerSecretsKey(ctx, principal, request.body.publicJwk)
      return reply.status(204).send(null)
    },
  )

  app.get(
    '/v1/secrets/:name',
    {
      config: { access: allow.attestedDevice },
      schema: {
        summary: 'A runtime secret, sealed to the device’s secrets key; needs a full-scope integrity token',
        tags: ['integrity'],
        params: Type.Object({ name: SecretName }),
        response: {
          200: SealedSecret,
          ...problemResponses(401, 403, 404, 409),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      if (principal.kind !== 'device') throw new Problem('auth/forbidden')
      const sealed = await deliverRuntimeSecret(ctx, principal, request.params.name)
      return reply.header('cache-control', 'no-store').send(sealed)
    },
  )
}

/** The apps a tenant registers, and the challenges their attestations answer. */
async function appRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.put(
    '/v1/apps/:appId',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: 'Register how Apple and Google know one of the bank’s apps, for hardware attestation',
        tags: ['integrity'],
        params: Type.Object({ appId: AppIdParam }),
        body: AppRegistration,
        response: { 204: Type.Null(), ...problemResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      await registerApp(ctx, principal.tenantId, request.params.appId, request.body, actorOf(principal))
      return reply.status(204).send(null)
    },
  )

  app.post(
    '/v1/integrity/challenges',
    {
      config: { access: allow.deviceWithoutIntegrityToken },
      schema: {
        summary: 'A single-use challenge for the next attestation (two minutes)',
        tags: ['integrity'],
        response: { 201: IntegrityChallenge, ...problemResponses(401, 403) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      if (principal.kind !== 'device') throw new Problem('auth/forbidden')
      return reply.status(201).send(await issueChallenge(ctx, principal.tenantId, principal.deviceId))
    },
  )
}

/** Switching an app version off. */
async function appVersionRoutes(
  app: App,
  ctx: ServerContext,
  deps: { deactivated: DeactivatedAppVersions },
): Promise<void> {
  app.post(
    '/v1/apps/:appId/versions/:appVersion/deactivate',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary:
          'Switch off one version of an app as bound at attestation (App Attest; Android builds go by versionCode): its integrity tokens stop working at once and it cannot attest',
        tags: ['integrity'],
        params: Type.Object({
          appId: Type.String({ minLength: 1, maxLength: 200 }),
          appVersion: Type.String({ pattern: '^[0-9]+(\\.[0-9]+){0,2}$' }),
        }),
        body: AppVersionDeactivation,
        response: { 204: Type.Null(), ...problemResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      await deactivateAppVersion(
        ctx,
        deps.deactivated,
        principal.tenantId,
        { ...request.params, reason: request.body?.reason },
        actorOf(principal),
      )
      return reply.status(204).send(null)
    },
  )
}

/** Switching off an Android build by the versionCode the platform attests (its versionName is the app's word). */
function versionCodeRoute(app: App, ctx: ServerContext, deps: { deactivated: DeactivatedAppVersions }): void {
  app.post(
    '/v1/apps/:appId/version-codes/:versionCode/deactivate',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary:
          'Switch off one Android build by its attested versionCode, whatever versionName it claims: its tokens stop working and it cannot attest',
        tags: ['integrity'],
        params: Type.Object({
          appId: Type.String({ minLength: 1, maxLength: 200 }),
          versionCode: Type.Integer({ minimum: 1, maximum: 2_100_000_000 }),
        }),
        body: AppVersionDeactivation,
        response: { 204: Type.Null(), ...problemResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const { appId, versionCode } = request.params
      const version = { appId, appVersion: androidVersionCodeKey(versionCode), reason: request.body?.reason }
      await deactivateAppVersion(ctx, deps.deactivated, principal.tenantId, version, actorOf(principal))
      return reply.status(204).send(null)
    },
  )
}

/** Attesting an app for an integrity token. */
async function attestationRoutes(
  app: App,
  ctx: ServerContext,
  deps: { tokenKey: SigningKey; verifiers: HardwareVerifiers },
): Promise<void> {
  app.post(
    '/v1/integrity/attest',
    {
      config: { access: allow.deviceWithoutIntegrityToken },
      schema: {
        summary: 'Prove the app and device; get an integrity token whose lifetime and scope follow the policy',
        tags: ['integrity'],
        body: AttestationEvidence,
        response: { 200: AttestationGrant, ...problemResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      if (principal.kind !== 'device') throw new Problem('auth/forbidden')
      const granted = await attest(ctx, deps.tokenKey, deps.verifiers, principal, request.body)
      return reply.header('cache-control', 'no-store').send(granted)
    },
  )
}

/**
 * Android keys attested when they are generated: the challenge an enrolment code obtains for the key the app will
 * enrol, and re-keying an enrolled device to a newly attested key (after an app update, to attest the new versionCode).
 */
function androidKeyRoutes(app: App, ctx: ServerContext, deps: { verifiers: HardwareVerifiers }): void {
  app.post(
    '/v1/integrity/enrolment-challenges',
    {
      config: { access: allow.anyone, guesses: 'enrolment-code' },
      schema: {
        summary:
          'A single-use challenge for the enrolment evidence (Android: the attestation challenge of the device key it generates; App Attest: the attestation naming the device key) of this code',
        tags: ['integrity'],
        body: EnrolmentChallengeRequest,
        response: { 201: EnrolmentChallenge, ...problemResponses(400, 429) },
      },
    },
    async (request, reply) =>
      reply
        .status(201)
        .header('cache-control', 'no-store')
        .send(await issueEnrolmentChallenge(ctx, request.body.enrolmentCode)),
  )

  app.post(
    '/v1/integrity/rekey',
    {
      config: { access: allow.deviceWithoutIntegrityToken },
      schema: {
        summary:
          'Make a newly generated, attested Android key the device key (the request signed by the current key; its tokens end)',
        tags: ['integrity'],
        body: RekeyRequest,
        response: { 200: Rekeyed, ...problemResponses(400, 401, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      if (principal.kind !== 'device') throw new Problem('auth/forbidden')
      const rekeyed = await rekeyAndroidDevice(ctx, deps.verifiers, principal, request.body)
      return reply.header('cache-control', 'no-store').send(rekeyed)
    },
  )
}
