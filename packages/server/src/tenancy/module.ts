import type { Module } from '../platform/module.ts'
import { purgeExpiredClientCredentials } from './api-clients.ts'
import { tenancyCommands } from './commands.ts'
import { oauthRoutes } from './oauth-routes.ts'
import { purgeUsedLogoutTokens } from './oidc-back-channel-logout.ts'
import { oidcCommands } from './oidc-commands.ts'
import { oidcProviderEncryptedColumns } from './oidc-providers.ts'
import { oidcRoutes } from './oidc-routes.ts'
import { purgeEndedSignIns, signInEncryptedColumns } from './oidc-sign-in.ts'
import { presenceRoutes } from './presence-routes.ts'
import { tenancyRoutes } from './routes.ts'
import { scimRolePolicyRoutes, scimRoutes } from './scim-routes.ts'
import { purgeExpiredStaffInvitations } from './staff-invitations.ts'

/**
 * Tenants, staff and their tokens (their provisioning over SCIM, their sign-in through the bank's OpenID provider),
 * bank backends' OAuth clients.
 */
export const tenancyModule: Module = {
  name: 'tenancy',
  routes: async (app, ctx) => {
    await app.register(async (scope) => tenancyRoutes(scope, ctx))
    await app.register(async (scope) => presenceRoutes(scope, ctx))
    await app.register(async (scope) => oauthRoutes(scope, ctx))
    await app.register(async (scope) => oidcRoutes(scope, ctx))
    // SCIM answers in its own error format: a scope of its own with its own error handler.
    await app.register(async (scope) => scimRoutes(scope, ctx))
    await app.register(async (scope) => scimRolePolicyRoutes(scope, ctx))
  },
  housekeeping: async (ctx) => {
    await purgeExpiredClientCredentials(ctx)
    await purgeEndedSignIns(ctx)
    await purgeUsedLogoutTokens(ctx)
    await purgeExpiredStaffInvitations(ctx)
  },
  commands: [...tenancyCommands, ...oidcCommands],
  encryptedColumns: [...oidcProviderEncryptedColumns, ...signInEncryptedColumns],
}
