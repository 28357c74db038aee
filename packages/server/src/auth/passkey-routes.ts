import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server'
import { type Static, Type } from '@sinclair/typebox'
import { recordAudit, SYSTEM_CHAIN } from '../audit/events.ts'
import { findCustomer } from '../identity/customers.ts'
import type { ServerContext } from '../platform/context.ts'
import { allow, forBrowsers } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf, type Principal } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { principalOf } from '../platform/http/request.ts'
import { scopes } from '../platform/http/roles.ts'
import { idOf, oneOf, problemResponses } from '../platform/http/schemas.ts'
import { findStaff, issueStaffToken } from '../tenancy/staff.ts'
import { findTenant } from '../tenancy/tenants.ts'
import { changerOf, type FactorProof, noticeFactorChange, proveFactorChange } from './factor-changes.ts'
import {
  listPasskeys,
  type PasskeyOwner,
  passkeyAuthenticationOptions,
  passkeyRegistrationOptions,
  registerPasskey,
  verifyPasskeyAssertion,
} from './passkeys.ts'

const base64url = (maxLength: number) => Type.String({ pattern: '^[A-Za-z0-9_-]*$', minLength: 1, maxLength })
const ClientExtensionResults = Type.Object({}, { additionalProperties: true, maxProperties: 20 })
const Attachment = Type.Optional(oneOf(['platform', 'cross-platform'] as const))

/** What `PublicKeyCredential.toJSON()` gives after `navigator.credentials.create` (WebAuthn Level 3). */
export const RegistrationCredential = Type.Object(
  {
    id: base64url(1366),
    rawId: base64url(1366),
    type: Type.Literal('public-key'),
    response: Type.Object({
      clientDataJSON: base64url(8192),
      attestationObject: base64url(32768),
      authenticatorData: Type.Optional(base64url(16384)),
      transports: Type.Optional(Type.Array(Type.String({ maxLength: 20 }), { maxItems: 10 })),
      publicKey: Type.Optional(base64url(4096)),
      publicKeyAlgorithm: Type.Optional(Type.Integer()),
    }),
    authenticatorAttachment: Attachment,
    clientExtensionResults: ClientExtensionResults,
  },
  { additionalProperties: false },
)

/** What `PublicKeyCredential.toJSON()` gives after `navigator.credentials.get`. */
export const AssertionCredential = Type.Object(
  {
    id: base64url(1366),
    rawId: base64url(1366),
    type: Type.Literal('public-key'),
    response: Type.Object({
      clientDataJSON: base64url(8192),
      authenticatorData: base64url(16384),
      signature: base64url(2048),
      userHandle: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]*$', maxLength: 128 })),
    }),
    authenticatorAttachment: Attachment,
    clientExtensionResults: ClientExtensionResults,
  },
  { additionalProperties: false },
)

/** The step-up that proves a factor change: a code of the active authenticator app, or a passkey assertion. */
export const FactorProofSchema = Type.Union([
  Type.Object({ totpCode: Type.String({ pattern: '^[0-9]{6}$' }) }, { additionalProperties: false }),
  Type.Object({ passkey: AssertionCredential }, { additionalProperties: false }),
])

const Options = Type.Object(
  { challenge: Type.String() },
  {
    additionalProperties: true,
    description: 'WebAuthn options (JSON): pass to navigator.credentials.create or .get as `publicKey`',
  },
)
export const PasskeySchema = Type.Object({
  id: Type.String(),
  credentialId: Type.String(),
  backupEligible: Type.Boolean(),
  backedUp: Type.Boolean(),
  transports: Type.Array(Type.String()),
  createdAt: Type.String(),
  lastUsedAt: Type.Union([Type.String(), Type.Null()]),
})
const RegisterBody = Type.Object(
  { credential: RegistrationCredential, stepUp: Type.Optional(FactorProofSchema) },
  { additionalProperties: false },
)
const StaffSignInOptionsBody = Type.Object({ tenantId: idOf('ten') }, { additionalProperties: false })

/** The owner a principal registers passkeys for: a device's customer, or the staff member themself. */
function ownerOf(principal: Principal): PasskeyOwner {
  if (principal.kind === 'device') return { kind: 'customer', id: principal.customerId }
  if (principal.kind === 'staff') return { kind: 'staff', id: principal.staffId }
  throw new Problem('auth/forbidden', 'bank backends have no passkeys')
}

const asRegistration = (body: Static<typeof RegisterBody>) => body.credential as unknown as RegistrationResponseJSON
const asAssertion = (assertion: Static<typeof AssertionCredential>) =>
  assertion as unknown as AuthenticationResponseJSON

/**
 * Passkeys (WebAuthn): customers register and use them from an enrolled device's session, so that each passkey is
 * bound to that customer; staff register one with their token and then sign in with it, which issues a staff token.
 */
/** How a new passkey names its owner and the bank, in the authenticator's own prompts. */
async function describeOwner(ctx: ServerContext, principal: Principal, owner: PasskeyOwner) {
  const tenant = await findTenant(ctx, principal.tenantId)
  const name =
    owner.kind === 'customer'
      ? (await findCustomer(ctx, principal.tenantId, owner.id))?.displayName
      : (await findStaff(ctx, principal.tenantId, { id: owner.id }))?.name
  if (!name) throw new Problem('request/not-found')
  return { name, displayName: name, rpName: tenant?.name ?? 'Strongroom' }
}

export async function passkeyRoutes(app: App, ctx: ServerContext): Promise<void> {
  await registrationRoutes(app, ctx)
  await passkeyListRoutes(app, ctx)
  await authenticationRoutes(app, ctx)
  await staffSignInOptionRoutes(app, ctx)
  await staffSignInRoutes(app, ctx)
}

/** Registering a passkey, for a device's customer or a staff member. */
async function registrationRoutes(app: App, ctx: ServerContext): Promise<void> {
  for (const [prefix, who, access] of [
    ['/v1/passkeys', 'the customer of this device', forBrowsers('always', allow.device)],
    ['/v1/staff/passkey', 'this staff member', allow.staffMember],
  ] as const) {
    app.post(
      `${prefix}/registration/options`,
      {
        config: { access },
        schema: {
          summary: `Start registering a passkey for ${who} (user verification required)`,
          tags: ['auth'],
          response: { 200: Options, ...problemResponses(401, 403, 503) },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request)
        const owner = ownerOf(principal)
        const options = await passkeyRegistrationOptions(
          ctx,
          principal.tenantId,
          owner,
          await describeOwner(ctx, principal, owner),
        )
        return reply.header('cache-control', 'no-store').send(options)
      },
    )

    app.post(
      `${prefix}/registration`,
      {
        config: { access },
        schema: {
          summary:
            prefix === '/v1/passkeys'
              ? `Finish registering a passkey for ${who}; while they hold a factor, with a step-up (stepUp)`
              : `Finish registering a passkey for ${who}`,
          tags: ['auth'],
          body: RegisterBody,
          response: { 201: PasskeySchema, ...problemResponses(400, 401, 403, 409, 503) },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request)
        const actor = actorOf(principal)
        if (principal.kind === 'device') {
          const changer = changerOf(principal)
          const stepUp = request.body.stepUp as FactorProof | undefined
          await proveFactorChange(ctx, changer, { action: 'add', kind: 'passkey' }, stepUp)
          const passkey = await registerPasskey(
            ctx,
            principal.tenantId,
            ownerOf(principal),
            asRegistration(request.body),
            actor,
          )
          noticeFactorChange(ctx, changer, { kind: 'factor-added', factor: 'passkey' })
          return reply.status(201).send(passkey)
        }
        if (request.body.stepUp) throw new Problem('request/invalid', 'stepUp is for customers')
        const passkey = await registerPasskey(
          ctx,
          principal.tenantId,
          ownerOf(principal),
          asRegistration(request.body),
          actor,
        )
        return reply.status(201).send(passkey)
      },
    )
  }
}

/** A customer's passkeys, and the options to authenticate with one. */
async function passkeyListRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/passkeys',
    {
      config: { access: allow.device },
      schema: {
        summary: "The passkeys of this device's customer",
        tags: ['auth'],
        response: { 200: Type.Object({ passkeys: Type.Array(PasskeySchema) }), ...problemResponses(401, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      return { passkeys: await listPasskeys(ctx, principal.tenantId, ownerOf(principal)) }
    },
  )

  app.post(
    '/v1/passkeys/authentication/options',
    {
      config: { access: forBrowsers('always', allow.device) },
      schema: {
        summary: "Start a passkey check of this device's customer (a step-up)",
        tags: ['auth'],
        response: { 200: Options, ...problemResponses(401, 403, 503) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const options = await passkeyAuthenticationOptions(ctx, principal.tenantId, 'authenticate', ownerOf(principal))
      return reply.header('cache-control', 'no-store').send(options)
    },
  )
}

/** Authenticating with a passkey. */
async function authenticationRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/passkeys/authentication',
    {
      config: { access: allow.device },
      schema: {
        summary: "Check a passkey assertion of this device's customer",
        tags: ['auth'],
        body: Type.Object({ assertion: AssertionCredential }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            factor: Type.Literal('passkey'),
            passkeyId: Type.String(),
            userVerified: Type.Boolean(),
            backedUp: Type.Boolean(),
          }),
          ...problemResponses(400, 401, 403, 503),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const owner = ownerOf(principal)
      const actor = actorOf(principal)
      const verified = await verifyPasskeyAssertion(ctx, principal.tenantId, asAssertion(request.body.assertion), {
        challenge: { purpose: 'authenticate', owner },
        owner,
        audit: { action: 'passkey.authenticate', actor },
        refusal: 'auth/passkey-invalid',
      })
      await recordAudit(ctx.db, {
        tenantId: principal.tenantId,
        actor,
        action: 'passkey.authenticate',
        target: { kind: 'passkey', id: verified.passkeyId },
        outcome: 'success',
        details: { userVerified: verified.userVerified, backedUp: verified.backedUp },
      })
      return {
        factor: 'passkey' as const,
        passkeyId: verified.passkeyId,
        userVerified: verified.userVerified,
        backedUp: verified.backedUp,
      }
    },
  )
}

/** The options a staff sign-in with a passkey starts from. */
async function staffSignInOptionRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/staff/passkey/sign-in/options',
    {
      // A staff sign-in needs no credentials: the passkey assertion is the credential, and it yields a staff token.
      config: { access: allow.anyone },
      schema: {
        summary: 'Start a staff sign-in with a passkey (no token needed; the passkey says who signs in)',
        tags: ['auth'],
        body: StaffSignInOptionsBody,
        response: { 200: Options, ...problemResponses(400, 503) },
      },
    },
    async (request, reply) => {
      // An unknown tenant gets a challenge like a known one: nothing here tells which tenants exist.
      const options = await passkeyAuthenticationOptions(ctx, request.body.tenantId, 'sign-in', undefined)
      return reply.header('cache-control', 'no-store').send(options)
    },
  )
}

/** Staff signing in with a passkey, for a staff token. */
async function staffSignInRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/staff/passkey/sign-in',
    {
      config: { access: allow.anyone, guesses: 'staff-sign-in' },
      schema: {
        summary: 'Sign a staff member in with a passkey: issues a staff API token (shown once)',
        tags: ['auth'],
        body: Type.Object(
          {
            tenantId: idOf('ten'),
            assertion: AssertionCredential,
            ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 12 * 3600 })),
            scopes: Type.Optional(Type.Array(oneOf(scopes), { minItems: 1, uniqueItems: true })),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            staffId: Type.String(),
            token: Type.String(),
            tokenId: Type.String(),
            scopes: Type.Array(Type.String()),
            expiresAt: Type.String(),
          }),
          ...problemResponses(400, 401, 403, 503),
        },
      },
    },
    async (request, reply) => {
      const { tenantId, assertion, ttlSeconds, scopes: asked } = request.body
      const tenant = await findTenant(ctx, tenantId)
      const verified = await verifyPasskeyAssertion(ctx, tenantId, asAssertion(assertion), {
        challenge: { purpose: 'sign-in' },
        owner: { kind: 'staff' },
        audit: {
          action: 'staff.passkey.sign-in',
          actor: { kind: 'system', id: null },
          ...(tenant ? {} : { chain: SYSTEM_CHAIN }),
        },
        refusal: 'auth/passkey-invalid',
      })
      const staff = await findStaff(ctx, tenantId, { id: verified.owner.id })
      if (!staff) throw new Problem('auth/passkey-invalid')
      // The token issue is audited as the staff member's own act; its details say the passkey stood behind it.
      const issued = await issueStaffToken(
        ctx,
        staff,
        { ttlSeconds: ttlSeconds ?? 8 * 3600, scopes: asked, signIn: { method: 'passkey', id: verified.passkeyId } },
        { kind: 'staff', id: staff.id },
      )
      await recordAudit(ctx.db, {
        tenantId,
        actor: { kind: 'staff', id: staff.id },
        action: 'staff.passkey.sign-in',
        target: { kind: 'passkey', id: verified.passkeyId },
        outcome: 'success',
        details: { tokenId: issued.tokenId, backedUp: verified.backedUp },
      })
      return reply
        .status(201)
        .header('cache-control', 'no-store')
        .send({ staffId: staff.id, ...issued })
    },
  )
}
