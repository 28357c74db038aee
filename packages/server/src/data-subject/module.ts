import type { Module } from '../platform/module.ts'
import { dataSubjectCommands } from './commands.ts'
import { dataSubjectRoutes } from './routes.ts'

/** Data subject access: everything held about one customer, in one export. */
export const dataSubjectModule: Module = {
  name: 'data-subject',
  routes: (app, ctx) => dataSubjectRoutes(app, ctx),
  commands: dataSubjectCommands,
}
