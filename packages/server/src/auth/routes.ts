import { Type } from '@sinclair/typebox'
import {
  CustomerFactorList,
  FactorRemoval,
  FactorsReset,
  FactorsResetRequest,
  SimSwapCheck,
  SimSwapRisk,
  SmsCodeCheck,
  SmsCodeRequest,
  SmsCodeSent,
  StepUpPolicy,
  TotpCode,
  TotpConfirmation,
  TotpEnrolment,
} from '@strongroom/sdk/protocol'
import { recordAudit } from '../audit/events.ts'
import { findCustomer } from '../identity/customers.ts'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf, type Principal } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { principalOf } from '../platform/http/request.ts'
import { idOf, problemResponses } from '../platform/http/schemas.ts'
import { findTenant } from '../tenancy/tenants.ts'
import {
  changerOf,
  type FactorProof,
  listFactors,
  noticeFactorChange,
  proveFactorChange,
  removeFactor,
  resetFactors,
} from './factor-changes.ts'
import { assessSimSwap, type SimSwapAssessment, type SimSwapProvider, SimSwapUnavailable } from './sim-swap.ts'
import { type SmsSender, sendSmsOtp, verifySmsOtp } from './sms-otp.ts'
import { loadStepUpPolicy, saveStepUpPolicy, simSwapWindowHours } from './step-up-policy.ts'
import { enrolTotp, verifyTotp } from './totp.ts'

async function requireCustomer(ctx: ServerContext, tenantId: string, customerId: string): Promise<void> {
  if (!(await findCustomer(ctx, tenantId, customerId))) throw new Problem('request/not-found', 'no such customer')
}

interface AuthDeps {
  simSwap: () => SimSwapProvider
  sendSms: SmsSender
}

export async function authRoutes(app: App, ctx: ServerContext, deps: AuthDeps): Promise<void> {
  await smsFactorRoutes(app, ctx, deps)
  await simSwapCheckRoutes(app, ctx, deps)
  await totpEnrolmentRoutes(app, ctx)
  await factorRoutes(app, ctx)
  await stepUpPolicyRoutes(app, ctx)
  await staffFactorRoutes(app, ctx)
}

/** A device acts for its own customer; staff name the customer. */
function customerFor(principal: Principal, customerId: string | undefined): string {
  if (principal.kind === 'device') {
    if (customerId !== undefined && customerId !== principal.customerId) throw new Problem('auth/forbidden')
    return principal.customerId
  }
  if (customerId === undefined) throw new Problem('request/invalid', 'customerId is required')
  return customerId
}

/** SMS one-time codes to the number on file. */
async function smsFactorRoutes(app: App, ctx: ServerContext, deps: AuthDeps): Promise<void> {
  app.post(
    '/v1/factors/sms/send',
    {
      config: { access: allow.any('customers:write') },
      schema: {
        summary: "Send a one-time code by SMS to the customer's number on file (after a SIM-swap check)",
        tags: ['auth'],
        body: SmsCodeRequest,
        response: { 202: SmsCodeSent, ...problemResponses(400, 401, 403, 404, 409, 429, 502, 503) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const sent = await sendSmsOtp(
        ctx,
        { simSwap: deps.simSwap(), sendSms: deps.sendSms },
        {
          tenantId: principal.tenantId,
          customerId: customerFor(principal, request.body.customerId),
          actor: actorOf(principal),
        },
      )
      return reply.status(202).header('cache-control', 'no-store').send(sent)
    },
  )

  app.post(
    '/v1/factors/sms/verify',
    {
      config: { access: allow.any('customers:write'), guesses: 'one-time-code' },
      schema: {
        summary: 'Check the SMS code (each code works once; five wrong codes void it)',
        tags: ['auth'],
        body: SmsCodeCheck,
        response: { 204: Type.Null(), ...problemResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      await verifySmsOtp(ctx, {
        tenantId: principal.tenantId,
        customerId: customerFor(principal, request.body.customerId),
        code: request.body.code,
        actor: actorOf(principal),
      })
      return reply.status(204).send(null)
    },
  )
}

/** The carrier's SIM-swap answer for a number, for staff. */
async function simSwapCheckRoutes(app: App, ctx: ServerContext, deps: Pick<AuthDeps, 'simSwap'>): Promise<void> {
  app.post(
    '/v1/risk/sim-swap',
    {
      config: { access: allow.staff('customers:write') },
      schema: {
        summary: 'Ask the carrier whether a phone number changed SIM recently, before trusting SMS for it',
        tags: ['auth'],
        body: SimSwapCheck,
        response: {
          200: SimSwapRisk,
          ...problemResponses(400, 401, 403, 503),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      let assessment: SimSwapAssessment | undefined
      let failure: SimSwapUnavailable | undefined
      try {
        const window = await simSwapWindowHours(ctx, principal.tenantId)
        assessment = await assessSimSwap(deps.simSwap(), request.body.phoneNumber, window)
      } catch (error) {
        if (!(error instanceof SimSwapUnavailable)) throw error
        failure = error
      }
      // The number itself stays out of the audit log: it is personal data, and the record needs only the outcome.
      await recordAudit(ctx.db, {
        tenantId: principal.tenantId,
        actor: actorOf(principal),
        action: 'risk.sim-swap.check',
        outcome: failure ? 'failure' : 'success',
        reason: failure?.reason,
        details: assessment ? { swapped: assessment.swapped, smsFactorsAllowed: assessment.smsFactorsAllowed } : {},
      })
      if (failure) throw new Problem('risk/sim-swap-unavailable', failure.reason)
      return assessment
    },
  )
}

/** Enrolling an authenticator app (TOTP): the secret, then the first code that confirms it. */
async function totpEnrolmentRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/factors/totp',
    {
      config: { access: allow.device },
      schema: {
        summary: "Start enrolling an authenticator app (TOTP) for the device's customer",
        tags: ['auth'],
        response: { 201: TotpEnrolment, ...problemResponses(401, 403) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      if (principal.kind !== 'device') throw new Problem('auth/forbidden')
      const tenant = await findTenant(ctx, principal.tenantId)
      const enrolment = await enrolTotp(
        ctx,
        principal.tenantId,
        principal.customerId,
        tenant?.name ?? 'Strongroom',
        actorOf(principal),
      )
      return reply.status(201).header('cache-control', 'no-store').send(enrolment)
    },
  )

  app.post(
    '/v1/factors/totp/confirm',
    {
      config: { access: allow.device, guesses: 'one-time-code' },
      schema: {
        summary:
          'Activate the enrolled authenticator app with its first code; replacing an active factor needs a step-up',
        tags: ['auth'],
        body: TotpConfirmation,
        response: { 204: Type.Null(), ...problemResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const changer = changerOf(principalOf(request))
      const { proven } = await proveFactorChange(
        ctx,
        changer,
        { action: 'add', kind: 'totp' },
        request.body.stepUp as FactorProof | undefined,
      )
      await verifyTotp(ctx, changer.tenantId, changer.customerId, request.body.code, {
        confirm: true,
        replacing: proven,
        actor: { kind: 'device', id: changer.deviceId },
      })
      noticeFactorChange(ctx, changer, { kind: 'factor-added', factor: 'totp' })
      return reply.status(204).send(null)
    },
  )
}

/** A device's factors: checking a TOTP code, listing and removing factors. */
async function factorRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/factors/totp/verify',
    {
      config: { access: allow.device, guesses: 'one-time-code' },
      schema: {
        summary: 'Check a code of the active authenticator app (each code works once)',
        tags: ['auth'],
        body: TotpCode,
        response: { 204: Type.Null(), ...problemResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      if (principal.kind !== 'device') throw new Problem('auth/forbidden')
      await verifyTotp(ctx, principal.tenantId, principal.customerId, request.body.code, { actor: actorOf(principal) })
      return reply.status(204).send(null)
    },
  )

  app.get(
    '/v1/factors',
    {
      config: { access: allow.device },
      schema: {
        summary: "The authenticator apps and passkeys of this device's customer, with their cooling-off",
        tags: ['auth'],
        response: { 200: CustomerFactorList, ...problemResponses(401, 403) },
      },
    },
    async (request, reply) => {
      const changer = changerOf(principalOf(request))
      const factors = await listFactors(ctx, changer.tenantId, changer.customerId)
      return reply.header('cache-control', 'no-store').send({ factors })
    },
  )

  app.post(
    '/v1/factors/:factorId/remove',
    {
      config: { access: allow.device },
      schema: {
        summary: "Remove one of this device's customer's factors, proven by a step-up with a factor at least as strong",
        tags: ['auth'],
        params: Type.Object({ factorId: Type.Union([idOf('otp'), idOf('pky')]) }),
        body: FactorRemoval,
        response: { 204: Type.Null(), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const changer = changerOf(principalOf(request))
      await removeFactor(ctx, changer, request.params.factorId, request.body.stepUp as FactorProof | undefined)
      return reply.status(204).send(null)
    },
  )
}

/** The tenant's step-up policy. */
async function stepUpPolicyRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/policies/step-up',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary:
          "The tenant's step-up policy: which actions, amounts, new devices or risk flags need more than the device key",
        tags: ['auth'],
        response: { 200: StepUpPolicy, ...problemResponses(401, 403) },
      },
    },
    async (request) => loadStepUpPolicy(ctx, principalOf(request).tenantId),
  )

  app.put(
    '/v1/policies/step-up',
    {
      config: { access: allow.staff('staff:admin') },
      schema: {
        summary: 'Replace the step-up policy (audited)',
        tags: ['auth'],
        body: StepUpPolicy,
        response: { 200: StepUpPolicy, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const actor = actorOf(principal)
      await ctx.db.transaction().execute(async (trx) => {
        await saveStepUpPolicy({ db: trx }, principal.tenantId, request.body, `${actor.kind}:${actor.id}`)
        await recordAudit(trx, {
          tenantId: principal.tenantId,
          actor,
          action: 'policy.step-up.update',
          outcome: 'success',
          details: { rules: request.body.rules.map((rule) => rule.name) },
        })
      })
      return request.body
    },
  )
}

/** Staff view a customer's factors and reset them. */
async function staffFactorRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/customers/:customerId/factors',
    {
      config: { access: allow.staff('customers:write') },
      schema: {
        summary: "A customer's authenticator apps and passkeys (one added recently is still cooling off: a risk)",
        tags: ['auth'],
        params: Type.Object({ customerId: idOf('cus') }),
        response: { 200: CustomerFactorList, ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      await requireCustomer(ctx, principal.tenantId, request.params.customerId)
      return { factors: await listFactors(ctx, principal.tenantId, request.params.customerId) }
    },
  )

  app.post(
    '/v1/customers/:customerId/factors/reset',
    {
      config: { access: allow.staff('factors:reset') },
      schema: {
        summary:
          'Staff-assisted reset: remove every factor of a customer who lost them (audited with the reason; every device of the customer is told)',
        tags: ['auth'],
        params: Type.Object({ customerId: idOf('cus') }),
        body: FactorsResetRequest,
        response: { 200: FactorsReset, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      await requireCustomer(ctx, principal.tenantId, request.params.customerId)
      return resetFactors(ctx, principal.tenantId, request.params.customerId, request.body, actorOf(principal))
    },
  )
}
