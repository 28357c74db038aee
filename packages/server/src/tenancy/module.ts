import type { Module } from '../platform/module.ts'
import { purgeExpiredClientCredentials } from './api-clients.ts'
import { tenancyCommands } from './commands.ts'
import { oauthRoutes } from './oauth-routes.ts'
import { tenancyRoutes } from './routes.ts'
import { scimRolePolicyRoutes, scimRoutes } from './scim-routes.ts'

/** Tenants, staff and their tokens (and their provisioning over SCIM), bank backends' OAuth clients. */
export const tenancyModule: Module = {
  name: 'tenancy',
  routes: async (app, ctx) => {
    await app.register(async (scope) => tenancyRoutes(scope, ctx))
    await app.register(async (scope) => oauthRoutes(scope, ctx))
    // SCIM answers in its own error format: a scope of its own with its own error handler.
    await app.register(async (scope) => scimRoutes(scope, ctx))
    await app.register(async (scope) => scimRolePolicyRoutes(scope, ctx))
  },
  housekeeping: (ctx) => purgeExpiredClientCredentials(ctx),
  commands: tenancyCommands,
}
