import type { Module } from '../platform/module.ts'
import { purgeEndedCounters } from './counters.ts'
import { rateLimitRoutes } from './routes.ts'

/** Rate limits shared across nodes; the hooks that apply them are installed by the server before access control. */
export const limitsModule: Module = {
  name: 'limits',
  routes: (app, ctx) => rateLimitRoutes(app, ctx),
  housekeeping: (ctx) => purgeEndedCounters(ctx),
}
