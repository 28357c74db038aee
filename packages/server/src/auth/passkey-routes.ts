import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server'
import type { Static } from '@sinclair/typebox'
import {
  Passkey,
  type PasskeyAssertion,
  PasskeyCheck,
  PasskeyCreationOptions,
  PasskeyList,
  PasskeyRegistration,
  PasskeyRequestOptions,
  PasskeyVerification,
  StaffPasskeySignIn,
  StaffSignIn,
  StaffSignInStart,
} from '@strongroom/sdk/protocol'
import { recordAudit, SYSTEM_CHAIN } from '../audit/events.ts'
import { findCustomer } from '../identity/customers.ts'
import type { ServerContext } from '../platform/context.ts'
import { allow, forBrowsers } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf, type Principal } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { principalOf } from '../platform/http/request.ts'
import { problemResponses } from '../platform/http/schemas.ts'
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

/** The owner a principal registers passkeys for: a device's customer, or the staff member themself. */
function ownerOf(principal: Principal): PasskeyOwner {
  if (principal.kind === 'device') return { kind: 'customer', id: principal.customerId }
  if (principal.kind === 'staff') return { kind: 'staff', id: principal.staffId }
  throw new Problem('auth/forbidden', 'bank backends have no passkeys')
}

const asRegistration = (body: Static<typeof PasskeyRegistration>) =>
  body.credential as unknown as RegistrationResponseJSON
const asAssertion = (assertion: Static<typeof PasskeyAssertion>) => assertion as unknown as AuthenticationResponseJSON

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
          response: { 200: PasskeyCreationOptions, ...problemResponses(401, 403, 503) },
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
          body: PasskeyRegistration,
          response: { 201: Passkey, ...problemResponses(400, 401, 403, 409, 503) },
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
        response: { 200: PasskeyList, ...problemResponses(401, 403) },
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
        response: { 200: PasskeyRequestOptions, ...problemResponses(401, 403, 503) },
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
        body: PasskeyCheck,
        response: { 200: PasskeyVerification, ...problemResponses(400, 401, 403, 503) },
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
        body: StaffSignInStart,
        response: { 200: PasskeyRequestOptions, ...problemResponses(400, 503) },
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
        body: StaffPasskeySignIn,
        response: { 201: StaffSignIn, ...problemResponses(400, 401, 403, 503) },
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
