import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import type { Module } from '../platform/module.ts'
import { identityCommands } from './commands.ts'
import { customerEncryptedColumns } from './customers.ts'
import { purgeExpiredAccessTokens } from './devices.ts'
import { purgeExpiredProofs } from './dpop.ts'
import { type DeviceRevocationHook, identityRoutes } from './routes.ts'

/** Customers, devices, enrolment, device tokens and DPoP, suspension, revocation and wipe. */
export const identityModule: Module<{ wipeKey: SigningKey; onDeviceRevoked: DeviceRevocationHook }> = {
  name: 'identity',
  routes: (app, ctx, { wipeKey, onDeviceRevoked }) => identityRoutes(app, ctx, { wipeKey, onRevoked: onDeviceRevoked }),
  housekeeping: (ctx) => Promise.all([purgeExpiredProofs(ctx), purgeExpiredAccessTokens(ctx)]),
  commands: identityCommands,
  encryptedColumns: customerEncryptedColumns,
}
