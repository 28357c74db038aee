import type { RegistrationResponseJSON } from '@simplewebauthn/server'
import {
  InvitedPasskeyRegistration,
  InvitedStaffPasskey,
  PasskeyCreationOptions,
  StaffInvitation,
} from '@strongroom/sdk/protocol'
import { recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'
import { problemResponses } from '../platform/http/schemas.ts'
import { peekStaffInvitation, useStaffInvitation } from '../tenancy/staff-invitations.ts'
import { findTenant } from '../tenancy/tenants.ts'
import { passkeyRegistrationOptions, registerPasskey } from './passkeys.ts'

/**
 * A staff member enrols their first passkey from the single-use link an administrator sent (`strongroom staff
 * invite`), with no token: the link's secret stands for them while it lives, and is used up by the registration. They
 * then sign in with the passkey (`/v1/staff/passkey/sign-in`). A link unknown, forged, used, expired or of a
 * deactivated member is refused alike (`auth/invitation-invalid`), and guesses are limited like sign-ins.
 */
export async function staffInvitationRoutes(app: App, ctx: ServerContext): Promise<void> {
  app.post(
    '/v1/staff/invitation/passkey/options',
    {
      config: { access: allow.anyone, guesses: 'staff-sign-in' },
      schema: {
        summary: 'Start enrolling a staff passkey from an invitation link (no token; the link is not used up yet)',
        tags: ['auth'],
        body: StaffInvitation,
        response: { 200: PasskeyCreationOptions, ...problemResponses(400, 401, 429, 503) },
      },
    },
    async (request, reply) => {
      const { tenantId, invitation } = request.body
      const staff = await peekStaffInvitation(ctx, tenantId, invitation)
      const tenant = await findTenant(ctx, tenantId)
      const options = await passkeyRegistrationOptions(
        ctx,
        tenantId,
        { kind: 'staff', id: staff.id },
        { name: staff.name, displayName: staff.name, rpName: tenant?.name ?? 'Strongroom' },
      )
      return reply.header('cache-control', 'no-store').send(options)
    },
  )

  app.post(
    '/v1/staff/invitation/passkey',
    {
      config: { access: allow.anyone, guesses: 'staff-sign-in' },
      schema: {
        summary: 'Finish enrolling a staff passkey from an invitation link, which this uses up',
        tags: ['auth'],
        body: InvitedPasskeyRegistration,
        response: { 201: InvitedStaffPasskey, ...problemResponses(400, 401, 409, 429, 503) },
      },
    },
    async (request, reply) => {
      const { tenantId, invitation, credential } = request.body
      const staff = await useStaffInvitation(ctx, tenantId, invitation)
      const actor = { kind: 'staff', id: staff.id } as const
      const passkey = await registerPasskey(
        ctx,
        tenantId,
        { kind: 'staff', id: staff.id },
        credential as unknown as RegistrationResponseJSON,
        actor,
      )
      await recordAudit(ctx.db, {
        tenantId,
        actor,
        action: 'staff.invitation.use',
        target: { kind: 'passkey', id: passkey.id },
        outcome: 'success',
        details: { invitationId: staff.invitationId },
      })
      return reply.status(201).header('cache-control', 'no-store').send({ staffId: staff.id, passkey })
    },
  )
}
