import type { AuthenticationResponseJSON } from '@simplewebauthn/server'
import { Type } from '@sinclair/typebox'
import {
  CustomerPivotInvitation,
  LiveCustomerPivotLink,
  LivePivotLink,
  PivotEnrolment,
  PivotInvitation,
  PivotLinkList,
  PivotLinkOpened,
  PivotRedemption,
  PivotStepUpEnrolment,
  PivotStepUpOptions,
  PivotToken,
  SentCustomerPivotLink,
  SentPivotLink,
  SmsCodeSent,
} from '@strongroom/sdk/protocol'
import type { SimSwapProvider } from '../auth/sim-swap.ts'
import type { SmsSender } from '../auth/sms-otp.ts'
import { reachCustomer } from '../channels/outreach.ts'
import type { ChannelDeps } from '../channels/public-messages.ts'
import { verifyDpopProof } from '../identity/dpop.ts'
import type { ServerContext } from '../platform/context.ts'
import { allow, forBrowsers, inConversation } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { principalMember } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { principalOf, requestHtu, singleHeader } from '../platform/http/request.ts'
import { idOf, problemResponses } from '../platform/http/schemas.ts'
import { invitePivot, listPivotLinks, openPivotLink, redeemPivot } from './pivot.ts'
import { enrolWithPivotLink, pivotStepUpOptions, sendPivotSmsCode } from './pivot-step-up.ts'

const ConversationParams = Type.Object({ conversationId: idOf('cnv') })

/** The pivot seen from the agent's side: invite the customer, follow the links; and the device that redeems one. */
export async function pivotRoutes(app: App, ctx: ServerContext, deps: ChannelDeps): Promise<void> {
  await invitationRoutes(app, ctx, deps)
  await proactiveInvitationRoutes(app, ctx, deps)
  await redemptionRoutes(app, ctx, deps)
}

/** Inviting the customer, and the links sent. */
async function invitationRoutes(app: App, ctx: ServerContext, deps: ChannelDeps): Promise<void> {
  app.post(
    '/v1/conversations/:conversationId/pivot',
    {
      config: { access: inConversation(allow.staff('conversations:write')) },
      schema: {
        summary:
          'Invite the customer to the secure channel: a single-use, short-lived link is sent on the public channel',
        description:
          'One live link per conversation: when one was sent (by an agent, or automatically after DLP masked card ' +
          'details) and is still usable, it is returned (200) and nothing is sent again; otherwise a new link is sent ' +
          '(201). With `replace`, a new link is sent anyway and the live one stops working.',
        tags: ['channels'],
        params: ConversationParams,
        body: PivotInvitation,
        response: {
          200: LivePivotLink,
          201: SentPivotLink,
          ...problemResponses(400, 401, 403, 404, 409, 502, 503),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const { conversationId } = request.params
      const result = await invitePivot(ctx, deps, {
        tenantId: principal.tenantId,
        conversationId,
        createdBy: { kind: 'staff', id: principalMember(principal).id },
        ttlSeconds: request.body?.ttlSeconds,
        replace: request.body?.replace,
      })
      return reply.status(result.message ? 201 : 200).send(result)
    },
  )

  app.get(
    '/v1/conversations/:conversationId/pivot-links',
    {
      config: { access: inConversation(allow.staff('conversations:read')) },
      schema: {
        summary: 'The secure-channel links sent in a conversation and their states (sent, opened, completed, expired)',
        tags: ['channels'],
        params: ConversationParams,
        response: { 200: PivotLinkList, ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      return { links: await listPivotLinks(ctx, principal.tenantId, request.params.conversationId) }
    },
  )
}

/** A secure link to a customer who has not written: on a channel they have, in the conversation they have there. */
async function proactiveInvitationRoutes(app: App, ctx: ServerContext, deps: ChannelDeps): Promise<void> {
  app.post(
    '/v1/customers/:customerId/pivot',
    {
      config: { access: allow.staff('conversations:write') },
      schema: {
        summary:
          'Send the customer a secure link without waiting for them to write, on a public channel they have (on ' +
          'WhatsApp after 24 hours as the approved `pivot` template)',
        description:
          'The customer’s conversation on the channel is reused, or made and assigned to the caller, who joins it; ' +
          'then as `POST /v1/conversations/{id}/pivot`: a live link is returned (200) and not sent again, otherwise ' +
          'a new one is sent (201). `channels/customer-unreachable` when the bank cannot write to them there.',
        tags: ['channels'],
        params: Type.Object({ customerId: idOf('cus') }),
        body: CustomerPivotInvitation,
        response: {
          200: LiveCustomerPivotLink,
          201: SentCustomerPivotLink,
          ...problemResponses(400, 401, 403, 404, 409, 502, 503),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const identity = await reachCustomer(ctx, principal, request.params.customerId, request.body.connector, 'pivot')
      const result = await invitePivot(ctx, deps, {
        tenantId: principal.tenantId,
        conversationId: identity.conversationId,
        createdBy: { kind: 'staff', id: principalMember(principal).id },
        ttlSeconds: request.body.ttlSeconds,
      })
      return reply.status(result.message ? 201 : 200).send({ conversationId: identity.conversationId, ...result })
    },
  )
}

/** Opening and redeeming a link. */
async function redemptionRoutes(app: App, ctx: ServerContext, deps: ChannelDeps): Promise<void> {
  app.post(
    '/v1/pivot/open',
    {
      // The token is the credential; the answer carries no personal data.
      config: { access: allow.anyone, guesses: 'pivot-link' },
      schema: {
        summary:
          'The secure page opened a link: says whether it can still be used (and marks it opened); no personal data',
        tags: ['channels'],
        body: PivotToken,
        response: { 200: PivotLinkOpened, ...problemResponses(400, 409, 410) },
      },
    },
    async (request) => openPivotLink(ctx, request.body.token),
  )

  app.post(
    '/v1/pivot/redeem',
    {
      config: { access: forBrowsers('always', allow.device), guesses: 'pivot-link' },
      schema: {
        summary:
          "Redeem a link with the customer's enrolled device: the conversation continues in the secure channel " +
          'with its public history imported',
        tags: ['channels'],
        body: PivotToken,
        response: { 200: PivotRedemption, ...problemResponses(400, 401, 403, 409, 410) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      if (principal.kind !== 'device') throw new Problem('auth/forbidden', 'this is for devices')
      return redeemPivot(ctx, deps, principal, request.body.token)
    },
  )
}

/** A browser that is not enrolled: the link and a fresh factor of its customer make it a device (pivot-step-up.ts). */
export async function pivotStepUpRoutes(
  app: App,
  ctx: ServerContext,
  deps: ChannelDeps,
  factors: { simSwap: () => SimSwapProvider; sendSms: SmsSender },
): Promise<void> {
  await stepUpFactorRoutes(app, ctx, factors)
  await stepUpEnrolRoutes(app, ctx, deps)
}

/** The factors a browser can step up with, and sending its SMS code. */
async function stepUpFactorRoutes(
  app: App,
  ctx: ServerContext,
  factors: { simSwap: () => SimSwapProvider; sendSms: SmsSender },
): Promise<void> {
  app.post(
    '/v1/pivot/step-up/options',
    {
      // A browser that is not enrolled: the link and a fresh factor of its customer make it a device (pivot-step-up.ts).
      config: { access: allow.anyone, guesses: 'pivot-link' },
      schema: {
        summary:
          "A browser that is not the customer's enrolled device: how it can prove it is the link's customer " +
          '(passkey options with a fresh challenge, and whether an SMS code can be sent); no personal data',
        tags: ['channels'],
        body: PivotToken,
        response: { 200: PivotStepUpOptions, ...problemResponses(400, 409, 410) },
      },
    },
    async (request, reply) =>
      reply.header('cache-control', 'no-store').send(await pivotStepUpOptions(ctx, request.body.token)),
  )

  app.post(
    '/v1/pivot/step-up/sms',
    {
      config: { access: allow.anyone, guesses: 'pivot-link' },
      schema: {
        summary:
          "Send the link's customer a one-time code by SMS to their number on file (after a SIM-swap check; " +
          'resends limited)',
        tags: ['channels'],
        body: PivotToken,
        response: { 202: SmsCodeSent, ...problemResponses(400, 403, 409, 410, 429, 502, 503) },
      },
    },
    async (request, reply) => {
      const sent = await sendPivotSmsCode(
        ctx,
        { sendSms: factors.sendSms, simSwap: factors.simSwap() },
        request.body.token,
      )
      return reply.status(202).header('cache-control', 'no-store').send(sent)
    },
  )
}

/** Enrolling the browser with the link and a fresh factor. */
async function stepUpEnrolRoutes(app: App, ctx: ServerContext, deps: ChannelDeps): Promise<void> {
  app.post(
    '/v1/pivot/enrol',
    {
      config: { access: allow.deviceKey, guesses: 'pivot-link' },
      schema: {
        summary:
          'Step up with the link and a fresh factor of its customer: the key that signs the DPoP proof becomes the ' +
          "customer's new device and redeems the link, in one transaction",
        tags: ['channels'],
        body: PivotStepUpEnrolment,
        response: { 201: PivotEnrolment, ...problemResponses(400, 401, 409, 410) },
      },
    },
    async (request, reply) => {
      const proof = await verifyDpopProof(ctx, singleHeader(request.headers.dpop), {
        htm: 'POST',
        htu: requestHtu(request, ctx.config.publicUrl),
      })
      const { factor } = request.body
      const enrolled = await enrolWithPivotLink(ctx, deps, proof, {
        token: request.body.token,
        label: request.body.label,
        factor:
          factor.kind === 'passkey'
            ? { kind: 'passkey', assertion: factor.assertion as unknown as AuthenticationResponseJSON }
            : factor,
      })
      return reply.status(201).header('cache-control', 'no-store').send(enrolled)
    },
  )
}
