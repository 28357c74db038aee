import type { Module } from '../platform/module.ts'
import { purgeExpiredClientCredentials } from './api-clients.ts'
import { oauthRoutes } from './oauth-routes.ts'
import { tenancyRoutes } from './routes.ts'

/** Tenants, staff and their tokens, bank backends' OAuth clients. */
export const tenancyModule: Module = {
  name: 'tenancy',
  routes: async (app, ctx) => {
    await app.register(async (scope) => tenancyRoutes(scope, ctx))
    await app.register(async (scope) => oauthRoutes(scope, ctx))
  },
  housekeeping: (ctx) => purgeExpiredClientCredentials(ctx),
}
