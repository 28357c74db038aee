import type { AuthenticationResponseJSON } from '@simplewebauthn/server'
import { Type } from '@sinclair/typebox'
import {
  ConsentApproval,
  ConsentDecline,
  ConsentList,
  ConsentListQuery,
  ConsentRequest,
  NewConsent,
  PasskeyCheck,
  ReceiptKeysQuery,
  SmsConfirmationSent,
} from '@strongroom/sdk/protocol'
import type { SimSwapProvider } from '../auth/sim-swap.ts'
import type { SmsSender } from '../auth/sms-otp.ts'
import { requireConversationAccess } from '../conversations/conversations.ts'
import { IdempotencyKeyHeaders, idempotent } from '../idempotency/idempotency.ts'
import type { ServerContext } from '../platform/context.ts'
import { allow, forBrowsers } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf, type Principal } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { principalOf } from '../platform/http/request.ts'
import { idOf, problemResponses } from '../platform/http/schemas.ts'
import type { TenantSigningKeys } from '../platform/keyring/signing-keys.ts'
import { approveConsent, approveConsentWithPasskey, declineConsent } from './approve.ts'
import { createConsent, getConsent, listConversationConsents, listPendingConsents } from './consents.ts'
import { payeeBlockRoutes } from './payee-block-routes.ts'
import { receiptJwks } from './receipts.ts'
import { requestSmsConfirmation } from './sms-confirmation.ts'

const ConsentParams = Type.Object({ consentId: idOf('con') })

/**
 * Staff name a conversation only if they may see it (a member, or `conversations:all`), as for its messages: another
 * agent's conversation answers 404. A bank backend is no member of any conversation and acts for the whole bank.
 */
async function requireStaffAccess(ctx: ServerContext, principal: Principal, conversationId: string | undefined) {
  if (conversationId !== undefined && principal.kind === 'staff') {
    await requireConversationAccess(ctx, principal, conversationId)
  }
}

export async function consentRoutes(
  app: App,
  ctx: ServerContext,
  deps: { receiptKeys: TenantSigningKeys; simSwap: () => SimSwapProvider; sendSms: SmsSender },
): Promise<void> {
  await consentRequestRoutes(app, ctx, deps)
  await consentReadRoutes(app, ctx)
  await approvalRoutes(app, ctx, deps)
  await declineAndKeyRoutes(app, ctx)
  await payeeBlockRoutes(app, ctx)
}

/** Asking for a consent, on the device or by SMS. */
async function consentRequestRoutes(
  app: App,
  ctx: ServerContext,
  deps: { receiptKeys: TenantSigningKeys; simSwap: () => SimSwapProvider; sendSms: SmsSender },
): Promise<void> {
  app.post(
    '/v1/consents/:consentId/sms-confirmation',
    {
      config: { access: allow.staff('consents:write') },
      schema: {
        summary:
          'Fallback without a device: text the customer "Reply YES <code> to approve <amount> to <payee>" (after a SIM-swap check, within the policy\'s SMS-reply limit)',
        tags: ['consent'],
        params: ConsentParams,
        response: {
          202: SmsConfirmationSent,
          ...problemResponses(401, 403, 404, 409, 410, 429, 502, 503),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const sent = await requestSmsConfirmation(
        ctx,
        { sendSms: deps.sendSms, simSwap: deps.simSwap() },
        { tenantId: principal.tenantId, consentId: request.params.consentId, actor: actorOf(principal) },
      )
      return reply.status(202).send(sent)
    },
  )

  app.post(
    '/v1/consents',
    {
      config: { access: allow.staff('consents:write') },
      schema: {
        summary: 'Ask a customer to confirm a payment of an exact amount to an exact payee',
        tags: ['consent'],
        body: NewConsent,
        headers: IdempotencyKeyHeaders,
        response: { 201: ConsentRequest, ...problemResponses(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      await requireStaffAccess(ctx, principal, request.body.conversationId)
      return idempotent(ctx, request, reply, 201, (scoped) =>
        createConsent(scoped, principal.tenantId, request.body, actorOf(principal)),
      )
    },
  )
}

/** Listing and reading consents. */
async function consentReadRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.get(
    '/v1/consents',
    {
      config: { access: allow.any('consents:write') },
      schema: {
        summary:
          "A device: its customer's pending consent requests (oldest first, at most 50), to show as cards to approve " +
          "or decline, optionally only one conversation's. Staff: a conversation's requests, newest first, as the " +
          'agent console follows them',
        tags: ['consent'],
        querystring: ConsentListQuery,
        response: { 200: ConsentList, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const { conversationId, limit } = request.query
      if (principal.kind === 'device') {
        const consents = await listPendingConsents(ctx, principal.tenantId, principal.customerId, conversationId)
        return reply.header('cache-control', 'no-store').send({ consents })
      }
      if (!conversationId) throw new Problem('request/invalid', 'staff list the consents of one conversation')
      await requireStaffAccess(ctx, principal, conversationId)
      return { consents: await listConversationConsents(ctx, principal.tenantId, conversationId, limit ?? 20) }
    },
  )

  app.get(
    '/v1/consents/:consentId',
    {
      config: { access: allow.any('consents:write') },
      schema: {
        summary: 'A consent request: its customer devices see it to approve it; staff see its status and receipt',
        tags: ['consent'],
        params: ConsentParams,
        response: { 200: ConsentRequest, ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const customerId = principal.kind === 'device' ? principal.customerId : undefined
      return getConsent(ctx, principal.tenantId, request.params.consentId, customerId)
    },
  )
}

/** Approving a consent with the device key or a passkey. */
async function approvalRoutes(
  app: App,
  ctx: ServerContext,
  deps: { receiptKeys: TenantSigningKeys; simSwap: () => SimSwapProvider; sendSms: SmsSender },
): Promise<void> {
  app.post(
    '/v1/consents/:consentId/approve',
    {
      config: { access: allow.device, guesses: 'consent-approval' },
      schema: {
        summary: 'Approve with a device-key signature (compact JWS) over the RFC 8785 canonical transaction',
        tags: ['consent'],
        params: ConsentParams,
        body: ConsentApproval,
        response: { 200: ConsentRequest, ...problemResponses(400, 401, 403, 404, 409, 410) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      if (principal.kind !== 'device') throw new Problem('auth/forbidden')
      return approveConsent(ctx, deps.receiptKeys, principal, request.params.consentId, {
        signature: request.body.signature,
        totpCode: request.body.totpCode,
        smsCode: request.body.smsCode,
        riskFlags: request.integrityFlags ?? [],
      })
    },
  )

  app.post(
    '/v1/consents/:consentId/approve/passkey',
    {
      config: { access: forBrowsers('always', allow.device), guesses: 'consent-approval' },
      schema: {
        summary:
          'Approve with a passkey assertion (user verification required) whose challenge is the SHA-256 of the RFC 8785 canonical transaction',
        tags: ['consent'],
        params: ConsentParams,
        body: PasskeyCheck,
        response: { 200: ConsentRequest, ...problemResponses(400, 401, 403, 404, 409, 410, 503) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      if (principal.kind !== 'device') throw new Problem('auth/forbidden')
      return approveConsentWithPasskey(ctx, deps.receiptKeys, principal, request.params.consentId, {
        assertion: request.body.assertion as unknown as AuthenticationResponseJSON,
        riskFlags: request.integrityFlags ?? [],
      })
    },
  )
}

/** Declining a consent, and the keys that verify receipts. */
async function declineAndKeyRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/consents/:consentId/decline',
    {
      config: { access: forBrowsers('always', allow.device) },
      schema: {
        summary: 'Decline a payment',
        tags: ['consent'],
        params: ConsentParams,
        description:
          'With `fraud`, the customer says the payment is not theirs ("This wasn\'t me"): every bank backend with a ' +
          'webhook gets `consent.fraud_reported`, and the staff see the request flagged. With `blockPayee` too, ' +
          'further requests to the same payee account for this customer are refused (409 consent/payee-blocked).',
        body: ConsentDecline,
        response: { 200: ConsentRequest, ...problemResponses(400, 401, 403, 404, 409, 410) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      if (principal.kind !== 'device') throw new Problem('auth/forbidden')
      return declineConsent(ctx, principal, request.params.consentId, request.body)
    },
  )

  app.get(
    '/.well-known/jwks.json',
    {
      config: { access: allow.anyone },
      schema: {
        summary: 'The public keys that verify consent receipts and webhooks (old keys stay listed)',
        description: 'With `tenant`, only the keys that sign for that bank: the JWKS the bank pins.',
        tags: ['consent'],
        querystring: ReceiptKeysQuery,
      },
    },
    async (request, reply) =>
      reply.header('cache-control', 'public, max-age=300').send(await receiptJwks(ctx, request.query.tenant)),
  )
}
