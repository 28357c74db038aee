import type { TenantSigningKeys } from '../platform/keyring/signing-keys.ts'
import type { Module } from '../platform/module.ts'
import { archiveCommands } from './commands.ts'
import { expireArchiveRecords } from './retention.ts'
import { archiveRoutes } from './routes.ts'

/** The compliance archive: records, exports, verification, retention, legal holds, erasure. */
export const archiveModule: Module<{ archiveKeys: TenantSigningKeys }> = {
  name: 'archive',
  routes: (app, ctx, { archiveKeys }) => archiveRoutes(app, ctx, { signers: archiveKeys }),
  housekeeping: (ctx) => expireArchiveRecords(ctx.db, { batch: ctx.config.archiveExpiryBatch }),
  commands: archiveCommands,
}
