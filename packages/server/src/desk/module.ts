import type { Module } from '../platform/module.ts'
import { deskCommands } from './commands.ts'
import { noteEncryptedColumns } from './notes.ts'
import { deskRoutes } from './routes.ts'

/**
 * The agent's desk: internal notes, canned replies, search (and its backfill), and a customer's conversations on every
 * channel.
 */
export const deskModule: Module = {
  name: 'desk',
  routes: (app, ctx) => deskRoutes(app, ctx),
  commands: deskCommands,
  encryptedColumns: noteEncryptedColumns,
}
