import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import type { Module } from '../platform/module.ts'
import { expireArchiveRecords } from './retention.ts'
import { archiveRoutes } from './routes.ts'

/** The compliance archive: records, exports, verification, retention, legal holds, erasure. */
export const archiveModule: Module<{ archiveSigner: SigningKey }> = {
  name: 'archive',
  routes: (app, ctx, { archiveSigner }) => archiveRoutes(app, ctx, { signer: archiveSigner }),
  housekeeping: (ctx) => expireArchiveRecords(ctx.db, { batch: ctx.config.archiveExpiryBatch }),
}
