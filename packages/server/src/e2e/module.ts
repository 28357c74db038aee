import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import type { Module } from '../platform/module.ts'
import { e2eRoutes } from './routes.ts'

/** The MLS delivery service: credentials, key packages, groups, commits, welcomes. */
export const e2eModule: Module<{
  credentialKey: SigningKey
  /** Gives the archive member key packages in this tenant before one is claimed (when it runs on this node). */
  prepareArchive: (tenantId: string) => Promise<void> | undefined
}> = {
  name: 'e2e',
  routes: (app, ctx, { credentialKey, prepareArchive }) => e2eRoutes(app, ctx, { credentialKey, prepareArchive }),
}
