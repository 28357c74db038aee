import { Type } from '@sinclair/typebox'
import { recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf, type Principal } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { principalOf } from '../platform/http/request.ts'
import { idOf, oneOf, problemResponses } from '../platform/http/schemas.ts'
import { findTenant } from '../tenancy/tenants.ts'
import { assessSimSwap, type SimSwapAssessment, type SimSwapProvider, SimSwapUnavailable } from './sim-swap.ts'
import { type SmsSender, sendSmsOtp, verifySmsOtp } from './sms-otp.ts'
import { loadStepUpPolicy, StepUpPolicy, saveStepUpPolicy, simSwapWindowHours } from './step-up-policy.ts'
import { enrolTotp, verifyTotp } from './totp.ts'

const CodeBody = Type.Object(
  { code: Type.String({ pattern: '^[0-9]{6}$', description: 'the 6-digit code the authenticator app shows' }) },
  { additionalProperties: false },
)

/** A device acts for its own customer; staff name the customer. */
function customerFor(principal: Principal, customerId: string | undefined): string {
  if (principal.kind === 'device') {
    if (customerId !== undefined && customerId !== principal.customerId) throw new Problem('auth/forbidden')
    return principal.customerId
  }
  if (customerId === undefined) throw new Problem('request/invalid', 'customerId is required')
  return customerId
}

export async function authRoutes(
  app: App,
  ctx: ServerContext,
  deps: { simSwap: () => SimSwapProvider; sendSms: SmsSender },
): Promise<void> {
  await smsCodeRoutes(app, ctx, deps)
  await simSwapRoutes(app, ctx, deps)
  await totpEnrolmentRoutes(app, ctx)
  await stepUpPolicyRoutes(app, ctx)
  await totpCodeRoutes(app, ctx)
}

/** One-time codes by SMS, after a SIM-swap check. */
async function smsCodeRoutes(
  app: App,
  ctx: ServerContext,
  deps: { simSwap: () => SimSwapProvider; sendSms: SmsSender },
): Promise<void> {
  app.post(
    '/v1/factors/sms/send',
    {
      schema: {
        summary: "Send a one-time code by SMS to the customer's number on file (after a SIM-swap check)",
        tags: ['auth'],
        body: Type.Object({ customerId: Type.Optional(idOf('cus')) }, { additionalProperties: false }),
        response: {
          202: Type.Object({ expiresAt: Type.String() }),
          ...problemResponses(400, 401, 403, 404, 409, 429, 502, 503),
        },
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
      schema: {
        summary: 'Check the SMS code (each code works once; five wrong codes void it)',
        tags: ['auth'],
        body: Type.Object(
          { code: Type.String({ pattern: '^[0-9]{6}$' }), customerId: Type.Optional(idOf('cus')) },
          { additionalProperties: false },
        ),
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

/** Asking the carrier whether a SIM was swapped. */
async function simSwapRoutes(
  app: App,
  ctx: ServerContext,
  deps: { simSwap: () => SimSwapProvider; sendSms: SmsSender },
): Promise<void> {
  app.post(
    '/v1/risk/sim-swap',
    {
      schema: {
        summary: 'Ask the carrier whether a phone number changed SIM recently, before trusting SMS for it',
        tags: ['auth'],
        body: Type.Object(
          { phoneNumber: Type.String({ pattern: '^\\+[1-9][0-9]{4,14}$', description: 'E.164' }) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            swapped: Type.Boolean(),
            latestSimChange: Type.Union([Type.String(), Type.Null()]),
            windowHours: Type.Integer(),
            smsFactorsAllowed: Type.Boolean(),
            risk: oneOf(['normal', 'high'] as const),
          }),
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

/** Enrolling an authenticator app. */
async function totpEnrolmentRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/factors/totp',
    {
      schema: {
        summary: "Start enrolling an authenticator app (TOTP) for the device's customer",
        tags: ['auth'],
        response: {
          201: Type.Object({ factorId: Type.String(), otpauthUri: Type.String(), qrCodeSvg: Type.String() }),
          ...problemResponses(401, 403),
        },
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
}

/** The tenant's step-up policy. */
async function stepUpPolicyRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/policies/step-up',
    {
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

/** Confirming and checking authenticator-app codes. */
async function totpCodeRoutes(app: App, ctx: ServerContext): Promise<void> {
  for (const [path, confirm, summary] of [
    ['/v1/factors/totp/confirm', true, 'Activate the enrolled authenticator app with its first code'],
    ['/v1/factors/totp/verify', false, 'Check a code of the active authenticator app (each code works once)'],
  ] as const) {
    app.post(
      path,
      {
        schema: {
          summary,
          tags: ['auth'],
          body: CodeBody,
          response: { 204: Type.Null(), ...problemResponses(400, 401, 403) },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request)
        if (principal.kind !== 'device') throw new Problem('auth/forbidden')
        await verifyTotp(ctx, principal.tenantId, principal.customerId, request.body.code, {
          confirm,
          actor: actorOf(principal),
        })
        return reply.status(204).send(null)
      },
    )
  }
}
