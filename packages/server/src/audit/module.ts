import type { Module } from '../platform/module.ts'
import { auditCommands } from './commands.ts'
import { auditRoutes } from './routes.ts'

/** The hash-chained security event log. */
export const auditModule: Module = {
  name: 'audit',
  routes: (app, ctx) => auditRoutes(app, ctx),
  commands: auditCommands,
}
