import type { Module } from '../platform/module.ts'
import { webRoutes } from './routes.ts'

/** The agent console, the customer's secure chat and (dev mode) the simulator's pages. */
export const webModule: Module = {
  name: 'web',
  routes: (app, ctx) => webRoutes(app, ctx),
}
